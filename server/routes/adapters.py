"""Adapter management: list, load or replace, unload. Changes need the admin token and run between batches."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from lslo.errors import AdapterFileError
from lslo.io import read_manifest
from lslo.io.adapter_file import parse_language_file
from lslo.languages import is_valid_code
from server.auth import require_admin
from server.engine import TranslationEngine
from server.errors import BadRequest, NotFound, PayloadTooLarge
from server.schemas import ERRORS, AdapterChange, AdapterEntry, AdapterList

router = APIRouter(prefix="/adapters", tags=["adapters"])

_UPLOAD_DOC = {
    "requestBody": {
        "required": False,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"}}}},
        },
    }
}


@router.get("", response_model=AdapterList, summary="Loaded adapters")
async def list_adapters(request: Request) -> AdapterList:
    service = request.app.state.service
    bundle = service.settings.bundle_dir
    return AdapterList(bundle=str(bundle) if bundle else "none", base_fingerprint=service.fingerprint,
                       languages=[AdapterEntry(**row) for row in service.adapter_table])


USER_CODE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?$")


def checked_code(lang: str, engine: TranslationEngine) -> str:
    """The base model's code for a language in a path (a client's code or the model's own): only codes of the
    language table's forms, and only languages the base has a token for. (It names the bundle file.)"""
    if not (is_valid_code(lang) or USER_CODE.match(lang)):
        raise BadRequest(f"{lang!r} is not a language code (like 'en', 'zh-Hant', 'kam' or 'eng_Latn')")
    code = engine.vocabulary.model_code(lang)
    if code is None:
        raise BadRequest(f"the base model's tokenizer has no language token for {lang!r}")
    return code


async def read_upload(request: Request) -> bytes | None:
    """The uploaded file (raw body or multipart field ``file``), or None when there is no body."""
    limit = request.app.state.service.settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"upload of {length} bytes; the limit is {limit}")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_part_size=limit)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("multipart upload needs a file field named 'file'")
        data = await upload.read()
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"upload larger than the limit of {limit} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
    return data or None


@router.put("/{lang}", response_model=AdapterChange, response_model_exclude_none=True, responses=ERRORS,
            openapi_extra=_UPLOAD_DOC, dependencies=[Depends(require_admin)],
            summary="Load or replace one language's adapter")
async def put_adapter(lang: str, request: Request) -> AdapterChange:
    service = request.app.state.service
    engine = service.engine
    code = checked_code(lang, engine)
    data = await read_upload(request)
    if data is None:
        bundle = service.settings.bundle_dir
        if bundle is None:
            raise NotFound("no body, and the service runs without a bundle: upload the adapter file")
        try:
            entry = read_manifest(bundle).languages.get(code)
        except AdapterFileError:
            entry = None
        path = bundle / (entry["file"] if entry else f"{code}.safetensors")
        if not path.is_file():
            raise NotFound(f"no body and no {path.name} in the bundle: upload the adapter file")
        # The label ends up in error messages: the file name only, never the server's paths.
        data, label, source = await run_in_threadpool(path.read_bytes), f"bundle file {path.name}", "bundle"
    else:
        label, source = f"upload for {code}", "upload"
    try:
        adapter = await run_in_threadpool(parse_language_file, data, label)
    except AdapterFileError as err:
        service.metrics.swaps.labels(action="load", result="refused").inc()
        raise BadRequest(f"adapter refused: {err.reason}") from None
    replaced = code in engine.adapters
    try:
        record = await service.change_adapters(lambda: engine.install(code, adapter, source))
    except AdapterFileError as err:
        service.metrics.swaps.labels(action="load", result="refused").inc()
        raise BadRequest(f"adapter refused: {err.reason}") from None
    action = "replaced" if replaced else "added"
    service.metrics.swaps.labels(action=action, result="ok").inc()
    return AdapterChange(language=code, action=action, rank=record.rank, sha256=record.sha256)


@router.delete("/{lang}", response_model=AdapterChange, response_model_exclude_none=True, responses=ERRORS,
               dependencies=[Depends(require_admin)], summary="Unload one language's adapter")
async def delete_adapter(lang: str, request: Request) -> AdapterChange:
    service = request.app.state.service
    code = checked_code(lang, service.engine)
    if code not in service.engine.adapters:
        raise NotFound(f"no adapter loaded for {code!r}")
    await service.change_adapters(lambda: service.engine.remove(code))
    service.metrics.swaps.labels(action="removed", result="ok").inc()
    return AdapterChange(language=code, action="removed")

