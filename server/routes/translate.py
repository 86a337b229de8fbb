"""``POST /translate`` and ``GET /languages`` (LibreTranslate-compatible)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from lslo.flags import validation_problems
from lslo.language_codes import language_name
from server.auth import check_api_key
from server.engine import Row
from server.errors import BadRequest, Overloaded, PayloadTooLarge, RateLimited
from server.schemas import ERRORS, LanguageEntry, TranslateRequest, TranslateResponse
from server.settings import ServerSettings
from server.text import clean

router = APIRouter()

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TranslateRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": TranslateRequest.model_json_schema()},
        },
    }
}


async def read_payload(request: Request) -> dict[str, Any]:
    """JSON or form body (libretranslatepy and HTML forms send forms); a repeated form ``q`` is a list."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        data: dict[str, Any] = {}
        for key in form.keys():
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            if values:
                data[key] = values if key == "q" and len(values) > 1 else values[0]
        return data
    body = await request.body()
    if not body:
        raise BadRequest('empty request body: send JSON like {"q": "Hello", "source": "en", "target": "fr"}')
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def check_request(req: TranslateRequest, texts: list[str], settings: ServerSettings, languages: set[str]) -> None:
    if req.format != "text":
        raise BadRequest("only format 'text' is supported")
    if req.source == "auto":
        raise BadRequest("language detection is not supported: give the source language")
    unknown = [f"{role} {code!r}" for role, code in (("source", req.source), ("target", req.target))
               if code not in languages]
    if unknown:
        raise BadRequest(f"unsupported {' and '.join(unknown)}; supported: {', '.join(sorted(languages))}")
    if not texts:
        raise BadRequest("q is empty: give a text or a non-empty list of texts")
    if len(texts) > settings.max_items:
        raise BadRequest(f"{len(texts)} texts in one request; the limit is {settings.max_items}")
    for i, text in enumerate(texts):
        if len(text) > settings.max_chars_per_item:
            raise PayloadTooLarge(f"text {i} has {len(text)} characters; the limit is {settings.max_chars_per_item}")
    total = sum(len(t) for t in texts)
    if total > settings.max_total_chars:
        raise PayloadTooLarge(f"the texts have {total} characters together; the limit is {settings.max_total_chars}")
    if req.alternatives > settings.max_alternatives:
        raise BadRequest(f"alternatives={req.alternatives}; the limit is {settings.max_alternatives}")


@router.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True,
             responses=ERRORS, openapi_extra=_BODY_DOC, summary="Translate text (LibreTranslate-compatible)")
async def translate(request: Request) -> TranslateResponse:
    service = request.app.state.service
    settings: ServerSettings = service.settings
    engine = service.engine
    payload = await read_payload(request)
    try:
        req = TranslateRequest.model_validate(payload)
    except ValidationError as err:
        raise BadRequest("invalid request: " + "; ".join(validation_problems(err))) from None
    key = check_api_key(settings, req.api_key or request.headers.get("x-api-key"))
    if key is not None:
        wait = service.rate_limits.take(key)
        if wait > 0:
            service.metrics.rejected.labels(reason="rate_limit").inc()
            raise RateLimited(f"rate limit of {settings.rate_limit_per_minute} requests per minute reached",
                              {"Retry-After": str(max(1, math.ceil(wait)))})
    raw = [req.q] if isinstance(req.q, str) else list(req.q)
    check_request(req, raw, settings, set(engine.languages))  # limits first: no work on oversized input
    texts = [clean(t) for t in raw]
    n_best = 1 + req.alternatives
    if req.source == req.target:
        results = [[t] * n_best for t in texts]
    else:
        rows = [Row(text, req.source, req.target, n_best) for text in texts]
        try:
            results = await asyncio.wait_for(service.batcher.translate(rows), settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise Overloaded(f"translation took longer than {settings.request_timeout_s}s; retry later",
                             {"Retry-After": "5"}) from None
        service.metrics.items.labels(source=req.source, target=req.target).inc(len(texts))
    best = [r[0] for r in results]
    alternatives = [r[1:] for r in results] if req.alternatives else None
    if isinstance(req.q, str):
        return TranslateResponse(translatedText=best[0], alternatives=alternatives[0] if alternatives else None)
    return TranslateResponse(translatedText=best, alternatives=alternatives)


@router.get("/languages", response_model=list[LanguageEntry], summary="Languages with a loaded adapter")
async def languages(request: Request) -> list[LanguageEntry]:
    codes = sorted(request.app.state.service.engine.languages)
    return [LanguageEntry(code=c, name=language_name(c), targets=[t for t in codes if t != c]) for c in codes]
