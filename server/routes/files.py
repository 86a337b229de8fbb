"""``POST /translate_file`` and ``GET /download_file/{name}`` (LibreTranslate-compatible).

The upload (multipart field ``file``, with ``source``, ``target`` and ``api_key`` as form fields or query
parameters) is translated in full and stored under an unguessable name for ``file_ttl_s`` seconds; the answer
is ``{"translatedFileUrl": ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from server.documents import DocumentError, file_format, translate_document
from server.engine import Row
from server.errors import BadRequest, NotFound, PayloadTooLarge
from server.routes.payload import validated
from server.routes.translate import check_access, detect_sources
from server.schemas import ERRORS
from server.translator import translate_html

if TYPE_CHECKING:
    from server.service import Service

router = APIRouter()


class FileRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source: str = Field(description="source language code, or 'auto'")
    target: str = Field(description="target language code")
    api_key: str | None = None


class FileResponse_(BaseModel):  # noqa: N801 - not to be confused with Starlette's FileResponse
    translatedFileUrl: str  # noqa: N815 - LibreTranslate's field name


_UPLOAD_DOC = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "source", "target"],
    "properties": {"file": {"type": "string", "format": "binary"}, "source": {"type": "string"},
                   "target": {"type": "string"}, "api_key": {"type": "string"}}}}}}}


def download_name(filename: str, target: str) -> str:
    """``guide.docx`` -> ``guide.fr.docx``, keeping only harmless characters of the client's name."""
    path = PurePath(filename.replace("\\", "/"))
    stem = re.sub(r"[^\w.-]+", "_", path.stem)[:100].strip("._") or "translated"
    return f"{stem}.{target}{path.suffix.lower()}"


@router.post("/translate_file", response_model=FileResponse_, responses=ERRORS, openapi_extra=_UPLOAD_DOC,
             summary="Translate a file (.txt, .html, .docx, .po, .pot, .srt)")
async def translate_file(request: Request) -> FileResponse_:
    service = request.app.state.service
    settings = service.settings
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_file_bytes + 64 * 1024:
        raise PayloadTooLarge(f"upload of {length} bytes; the limit is {settings.max_file_bytes}")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        raise BadRequest("send the file as multipart/form-data, in a field named 'file'")
    form = await request.form(max_part_size=settings.max_file_bytes + 1)
    fields = {k: v for k, v in request.query_params.items()}
    fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    req = validated(FileRequest, fields)
    check_access(request, req.api_key)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise BadRequest("no file: send it in a multipart field named 'file'")
    data = await upload.read()
    if len(data) > settings.max_file_bytes:
        raise PayloadTooLarge(f"the file has {len(data)} bytes; the limit is {settings.max_file_bytes}")
    languages = set(service.engine.languages)
    unknown = [f"{role} {code!r}" for role, code in (("source", req.source), ("target", req.target))
               if code not in languages and not (role == "source" and code == "auto")]
    if unknown:
        raise BadRequest(f"unsupported {' and '.join(unknown)}; supported: {', '.join(sorted(languages))}")
    try:
        suffix, kind = file_format(upload.filename or "")
        translated = await _translate(service, suffix, data, req.source, req.target)
    except DocumentError as err:
        raise BadRequest(str(err)) from None
    name = service.files.save(translated, kind.extension, download_name(upload.filename or "", req.target),
                              kind.media_type)
    return FileResponse_(translatedFileUrl=str(request.url_for("download_file", name=name)))


async def _translate(service: Service, suffix: str, data: bytes, source: str, target: str) -> bytes:
    settings = service.settings
    characters = 0

    def count(texts: Sequence[str]) -> None:
        nonlocal characters
        characters += sum(len(t) for t in texts)
        if characters > settings.max_file_chars:
            raise PayloadTooLarge(f"the file holds more than {settings.max_file_chars} characters of text; "
                                  "that is the limit")

    if source == "auto":
        from server.documents import document_text

        source = detect_sources(service, [document_text(suffix, data)], suffix in (".html", ".htm"))[0].language

    async def texts(items: Sequence[str]) -> list[str]:
        count(items)
        results = await service.translator.translate_many([Row(t, source, target) for t in items],
                                                          settings.file_timeout_s)
        return [r[0] for r in results]

    async def html(document: str) -> str:
        from server.text.markup import parse

        count([u.model_text() for u in parse(document).units])
        return (await translate_html(service.translator, [document], [source], target, 1,
                                     settings.file_timeout_s))[0][0]

    return await translate_document(suffix, data, texts, html, target)


@router.get("/download_file/{name}", responses={404: ERRORS[404]}, summary="Download a translated file")
async def download_file(name: str, request: Request) -> FileResponse:
    stored = request.app.state.service.files.get(name)
    if stored is None:
        raise NotFound("no such file: it expired, or the name is wrong")
    return FileResponse(stored.path, media_type=stored.media_type, filename=stored.download_name)

