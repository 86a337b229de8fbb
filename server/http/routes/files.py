"""``POST /translate_file`` and ``GET /download_file/{name}`` (LibreTranslate-compatible).

The upload (multipart field ``file``, with ``source``, ``target`` and ``api_key`` as form fields or query
parameters) is translated in full and stored under an unguessable name for ``file_ttl_s`` seconds; the answer
is ``{"translatedFileUrl": ...}``.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import PurePath

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from server.documents import DocumentError, file_format, read_document
from server.documents.catalog import CatalogDocument
from server.documents.toolkit import ToolkitDocument
from server.errors import BadRequest, NotFound, PayloadTooLarge
from server.http.routes.glossaries import request_glossaries
from server.http.routes.payload import validated
from server.http.routes.translate import check_access, detect_sources, detected_sources, resolve_pair
from server.http.schemas import ERRORS
from server.text.glossary import Glossary, GlossaryError, parse_inline
from server.text.units import Text

router = APIRouter()


class FileRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source: str = Field(description="source language code, or 'auto'")
    target: str = Field(description="target language code")
    api_key: str | None = None
    glossary_id: str | None = Field(None, description="a stored glossary (PUT /glossaries/{id}) for this pair")
    glossary: str | None = Field(
        None, description='inline terms as JSON: [{"source": ..., "target": ...}] or {"source term": "target term"}'
    )
    dnt: str | None = Field(None, description="terms kept as they are: a JSON list, or comma-separated")
    min_confidence: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="texts translated with a lower confidence are "
        "left untranslated (gettext and XLIFF/.ts: with a translator note saying so)",
    )


class FileResponse_(BaseModel):  # noqa: N801 - not to be confused with Starlette's FileResponse
    translatedFileUrl: str  # noqa: N815 - LibreTranslate's field name


_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "source", "target"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "source": {"type": "string"},
                        "target": {"type": "string"},
                        "api_key": {"type": "string"},
                        "glossary_id": {"type": "string"},
                        "glossary": {"type": "string"},
                        "dnt": {"type": "string"},
                        "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                }
            }
        },
    }
}


def inline_glossary(req: FileRequest) -> Glossary:
    """The form's ``glossary`` (JSON) and ``dnt`` (a JSON list, or terms separated by commas)."""
    try:
        terms = json.loads(req.glossary) if req.glossary else None
        if req.dnt and req.dnt.lstrip().startswith("["):
            dnt = json.loads(req.dnt)
        else:
            dnt = [t.strip() for t in (req.dnt or "").split(",") if t.strip()]
        if (
            not (terms is None or isinstance(terms, (list, dict)))
            or not isinstance(dnt, list)
            or not all(isinstance(t, str) for t in dnt)
        ):
            raise GlossaryError("glossary must be a JSON list or object, dnt a JSON list of strings")
        return parse_inline(terms, dnt)
    except json.JSONDecodeError as err:
        raise BadRequest(f"glossary and dnt must be JSON (or dnt comma-separated terms): {err}") from None
    except GlossaryError as err:
        raise BadRequest(str(err)) from None


def download_name(filename: str, target: str) -> str:
    """``guide.docx`` -> ``guide.fr.docx``, keeping only harmless characters of the client's name."""
    path = PurePath(filename.replace("\\", "/"))
    stem = re.sub(r"[^\w.-]+", "_", path.stem)[:100].strip("._") or "translated"
    return f"{stem}.{target}{path.suffix.lower()}"


async def _read_form(request: Request, max_file_bytes: int) -> tuple[FileRequest, UploadFile, bytes]:
    """The request's fields (form and query string, validated), its file and the file's bytes."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        raise BadRequest("send the file as multipart/form-data, in a field named 'file'")
    # The body as a whole is bounded by the BodyLimit middleware; here the count of parts and the size of each
    # text field (source, target, api_key) are.
    form = await request.form(max_files=1, max_fields=16, max_part_size=64 * 1024)
    fields = {k: v for k, v in request.query_params.items()}
    fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    req = validated(FileRequest, fields)
    check_access(request, req.api_key)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise BadRequest("no file: send it in a multipart field named 'file'")
    data = await upload.read()
    if len(data) > max_file_bytes:
        raise PayloadTooLarge(f"the file has {len(data)} bytes; the limit is {max_file_bytes}")
    return req, upload, data


@router.post(
    "/translate_file",
    response_model=FileResponse_,
    responses=ERRORS,
    openapi_extra=_UPLOAD_DOC,
    summary="Translate a file (text, HTML, Word, Markdown, gettext, subtitles, XLIFF, Qt, Android, JSON...)",
)
async def translate_file(request: Request) -> FileResponse_:
    service = request.app.state.service
    settings = service.settings
    req, upload, data = await _read_form(request, settings.max_file_bytes)
    source, target = resolve_pair(service.front, req.source, req.target)
    try:
        suffix, kind = file_format(upload.filename or "")
        document = await run_in_threadpool(read_document, suffix, data)
    except DocumentError as err:
        raise BadRequest(str(err)) from None
    if document.characters > settings.max_file_chars:
        raise PayloadTooLarge(
            f"the file holds {document.characters} characters of text; the limit is {settings.max_file_chars}"
        )
    if source == "auto":
        detected = await run_in_threadpool(detect_sources, service, [document.sample], False)
        source = detected_sources(service.front, detected, target)[0]
    (glossary,) = request_glossaries(request, req.api_key, req.glossary_id, inline_glossary(req), [source], target)
    results = await service.translator.translate(
        [
            Text(t, source, target, syntax=syntax, glossary=glossary)
            for t, syntax in zip(document.texts, document.syntaxes)
        ],
        settings.file_timeout_s,
        document=True,
    )
    confidences = [r.confidences[0] for r in results]
    # under the threshold: the source text (formats that can say why get the confidences and do so)
    versions = [
        text if c is not None and c < req.min_confidence else r.versions[0]
        for text, r, c in zip(document.texts, results, confidences)
    ]
    lost = [i for i, r in enumerate(results) if r.kept_source]
    noted = (
        {"confidences": confidences, "threshold": req.min_confidence}
        if isinstance(document, (CatalogDocument, ToolkitDocument))
        else {}
    )
    try:
        translated = await run_in_threadpool(
            partial(document.render, versions, service.front.user_code(target), lost, **noted)
        )
    except DocumentError as err:
        raise BadRequest(str(err)) from None
    name = await run_in_threadpool(
        service.files.save,
        translated,
        kind.extension,
        download_name(upload.filename or "", req.target),
        kind.media_type,
    )
    return FileResponse_(translatedFileUrl=str(request.url_for("download_file", name=name)))


@router.get("/download_file/{name}", responses={404: ERRORS[404]}, summary="Download a translated file")
async def download_file(name: str, request: Request) -> FileResponse:
    stored = request.app.state.service.files.get(name)
    if stored is None:
        raise NotFound("no such file: it expired, or the name is wrong")
    return FileResponse(stored.path, media_type=stored.media_type, filename=stored.download_name)
