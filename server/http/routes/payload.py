"""Request fields as LibreTranslate takes them: from a JSON body, a form body (urlencoded or multipart) or the
query string (``deep-translator`` sends its fields there). The body wins where both give a field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from lslo.cli.flags import validation_problems
from server.errors import BadRequest, PayloadTooLarge

M = TypeVar("M", bound=BaseModel)
LISTS = ("q",)  # a field given several times is a list


def _multi(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(value, str):
            continue  # an uploaded file is read by its own route
        if key in data and key in LISTS:
            data[key] = [*(data[key] if isinstance(data[key], list) else [data[key]]), value]
        else:
            data.setdefault(key, value)
    return data


async def read_payload(request: Request, example: str) -> dict[str, Any]:
    """The request's fields; BadRequest for a body that is not JSON, a form, or empty."""
    data = _multi(list(request.query_params.multi_items()))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=64, max_part_size=1024 * 1024)
        return {**data, **_multi(list(form.multi_items()))}
    body = await request.body()
    if not body:
        if data:
            return data
        raise BadRequest(f"empty request: send JSON like {example}, a form, or query parameters")
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequest("request body must be a JSON object")
    return {**data, **parsed}


def validated(model: type[M], payload: dict[str, Any]) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        raise BadRequest("invalid request: " + "; ".join(validation_problems(err))) from None


async def read_upload(request: Request, limit: int) -> tuple[bytes | None, str]:
    """An uploaded file (the raw body, or the multipart field ``file``) of at most ``limit`` bytes (413 beyond,
    counted as it streams in) and its file name (multipart only); None when there is no body."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"upload of {length} bytes; the limit is {limit}")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    filename = ""
    if content_type == "multipart/form-data":
        form = await request.form(max_part_size=limit)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("multipart upload needs a file field named 'file'")
        data = await upload.read()
        filename = upload.filename or ""
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"upload larger than the limit of {limit} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
    return data or None, filename
