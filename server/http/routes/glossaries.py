"""Stored glossaries: ``PUT /glossaries/{id}`` (a CSV, TSV or TBX file as the body or as multipart ``file``),
``GET /glossaries``, ``GET /glossaries/{id}``, ``DELETE /glossaries/{id}``. With API keys configured each key
manages and uses its own glossaries; without, they are the admin's (admin token to change them) and every
request may use them by ``glossary_id``."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server.errors import BadRequest, Conflict, NotFound
from server.http.auth import check_api_key, require_admin
from server.http.routes.payload import read_upload
from server.http.schemas import ERRORS, GlossaryInfo, GlossaryList, GlossaryTerm
from server.runtime.front_end import FrontEnd
from server.runtime.glossary_store import GLOSSARY_ID, GlossaryLimit, owner_of
from server.text.glossary import Glossary, GlossaryError
from server.text.glossary_files import MAX_GLOSSARY_BYTES, GlossaryFile, read_glossary_file

router = APIRouter(prefix="/glossaries", tags=["glossaries"])

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/tab-separated-values": {"schema": {"type": "string"}},
            "application/x-tbx+xml": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


def served_code(front: FrontEnd, code: str) -> str | None:
    """The model code of a glossary's language (``fr``, ``fr-FR`` and ``fra_Latn`` all name French)."""
    return front.model_code(code) or front.model_code(code.split("-")[0].split("_")[0].lower())


def managing_owner(request: Request) -> str:
    """Who manages glossaries with this request: its API key's owner when keys are configured, else the admin
    (the admin token is required)."""
    settings = request.app.state.service.settings
    if settings.api_keys:
        key = check_api_key(settings, request.query_params.get("api_key") or request.headers.get("x-api-key"))
        return owner_of(key)
    require_admin(request)
    return owner_of(None)


def request_glossaries(
    request: Request,
    api_key: str | None,
    glossary_id: str | None,
    inline: Glossary,
    sources: Sequence[str],
    target: str,
) -> list[Glossary]:
    """The glossary of each text of a request (model codes ``sources``, ``target``): the stored one named by
    ``glossary_id`` where its pair is the text's, with the inline terms over it. 404 for an unknown id, 400 for
    a glossary of another pair."""
    if not glossary_id:
        return [inline] * len(sources)
    service = request.app.state.service
    settings = service.settings
    owner = owner_of(check_api_key(settings, api_key or request.headers.get("x-api-key")))
    stored = service.glossaries.get(owner, checked_id(glossary_id))
    if stored is None:
        raise NotFound(f"no glossary {glossary_id!r}")
    source, stored_target = served_code(service.front, stored.source), served_code(service.front, stored.target)
    if stored_target != target or source not in sources:
        raise BadRequest(
            f"glossary {glossary_id!r} is {stored.source}→{stored.target}; this request translates "
            f"{', '.join(sorted({service.front.user_code(s) for s in sources}))}"
            f"→{service.front.user_code(target)}"
        )
    return [stored.glossary.merged(inline) if s == source else inline for s in sources]


def checked_id(glossary_id: str) -> str:
    if not GLOSSARY_ID.match(glossary_id):
        raise BadRequest("a glossary id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return glossary_id


def info(glossary_id: str, glossary: GlossaryFile, created: bool | None = None) -> GlossaryInfo:
    return GlossaryInfo(
        id=glossary_id,
        source=glossary.source,
        target=glossary.target,
        terms=len(glossary.glossary.terms),
        created=created,
    )


@router.put(
    "/{glossary_id}",
    response_model=GlossaryInfo,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=_UPLOAD_DOC,
    summary="Store or replace a glossary (CSV/TSV with a header row naming the two languages, or TBX)",
)
async def put_glossary(
    glossary_id: str,
    request: Request,
    source: str | None = Query(None, description="TBX: the source language (default: its first)"),
    target: str | None = Query(None, description="TBX: the target language (default: its second)"),
) -> GlossaryInfo:
    service = request.app.state.service
    owner = managing_owner(request)
    checked_id(glossary_id)
    data, filename = await read_upload(request, MAX_GLOSSARY_BYTES)
    if not data:
        raise BadRequest("send the glossary file as the body or as a multipart field named 'file'")
    try:
        glossary = await run_in_threadpool(read_glossary_file, data, filename, source, target)
    except GlossaryError as err:
        raise BadRequest(f"glossary refused: {err}") from None
    for role, code in (("source", glossary.source), ("target", glossary.target)):
        if served_code(service.front, code) is None:
            raise BadRequest(f"glossary refused: its {role} language {code!r} is not served here")
    try:
        created = await run_in_threadpool(service.glossaries.put, owner, glossary_id, glossary)
    except GlossaryLimit as err:
        raise Conflict(str(err)) from None
    return info(glossary_id, glossary, created)


@router.get("", response_model=GlossaryList, responses=ERRORS, summary="The stored glossaries' ids")
async def list_glossaries(request: Request) -> GlossaryList:
    service = request.app.state.service
    owner = managing_owner(request)
    return GlossaryList(glossaries=await run_in_threadpool(service.glossaries.ids, owner))


@router.get(
    "/{glossary_id}",
    response_model=GlossaryInfo,
    response_model_exclude_none=True,
    responses=ERRORS,
    summary="A stored glossary, its terms included",
)
async def get_glossary(glossary_id: str, request: Request) -> GlossaryInfo:
    service = request.app.state.service
    owner = managing_owner(request)
    glossary = await run_in_threadpool(service.glossaries.get, owner, checked_id(glossary_id))
    if glossary is None:
        raise NotFound(f"no glossary {glossary_id!r}")
    out = info(glossary_id, glossary)
    out.entries = [GlossaryTerm(source=t.source, target=t.target) for t in glossary.glossary.terms]
    return out


@router.delete("/{glossary_id}", status_code=204, responses=ERRORS, summary="Delete a stored glossary")
async def delete_glossary(glossary_id: str, request: Request) -> Response:
    service = request.app.state.service
    owner = managing_owner(request)
    if not await run_in_threadpool(service.glossaries.delete, owner, checked_id(glossary_id)):
        raise NotFound(f"no glossary {glossary_id!r}")
    return Response(status_code=204)
