"""``POST /translate``, ``POST /detect`` and ``GET /languages`` (LibreTranslate-compatible).

``source: "auto"`` detects every text on its own (a list may mix languages); ``format: "html"`` translates the
text of a document and keeps its markup. Long texts are translated whole, sentence by sentence.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from lslo.languages.codes import language_name
from server.errors import BadRequest, PayloadTooLarge, RateLimited
from server.http.auth import check_api_key
from server.http.routes.glossaries import request_glossaries
from server.http.routes.payload import read_payload, validated
from server.http.schemas import (
    ERRORS,
    DetectedLanguage,
    DetectRequest,
    LanguageEntry,
    TranslateRequest,
    TranslateResponse,
)
from server.runtime.front_end import FrontEnd
from server.runtime.translator import translate_html
from server.settings import ServerSettings
from server.text.clean import clean
from server.text.glossary import GlossaryError, parse_inline
from server.text.markup import parse
from server.text.units import Text

# How many sentences came back untranslated because every translation lost one of their placeholders.
UNTRANSLATED_HEADER = "X-Untranslated-Sentences"

if TYPE_CHECKING:
    from server.runtime.service import Service

router = APIRouter()


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }


def check_access(request: Request, api_key: str | None) -> None:
    """API key (when keys are configured) and its rate limit."""
    service = request.app.state.service
    settings: ServerSettings = service.settings
    key = check_api_key(settings, api_key or request.headers.get("x-api-key"))
    if key is not None:
        wait = service.rate_limits.take(key)
        if wait > 0:
            service.metrics.rejected.labels(reason="rate_limit").inc()
            raise RateLimited(
                f"rate limit of {settings.rate_limit_per_minute} requests per minute reached",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )


def resolve_pair(engine: FrontEnd, source: str, target: str) -> tuple[str, str]:
    """The model codes of a request's source (or ``auto``) and target, from the codes the client sent; 400 for a
    language the service does not offer, naming the ones it does."""
    resolved = {
        role: ("auto" if role == "source" and code == "auto" else engine.model_code(code))
        for role, code in (("source", source), ("target", target))
    }
    unknown = [f"{role} {code!r}" for role, code in (("source", source), ("target", target)) if resolved[role] is None]
    if unknown:
        offered = ", ".join(engine.user_code(c) for c in engine.languages)
        raise BadRequest(f"unsupported {' and '.join(unknown)}; supported: {offered}")
    return resolved["source"], resolved["target"]  # type: ignore[return-value]


def check_request(req: TranslateRequest, texts: list[str], settings: ServerSettings) -> None:
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


def detect_sources(service: Service, texts: list[str], html: bool) -> list[DetectedLanguage]:
    """Each text's language, as a client's code (of its visible text, for HTML). Where nothing can be detected
    (no letters, or a script no served language uses) the answer has confidence 0, and the text is left as it
    is."""
    found = []
    for text in texts:
        visible = " ".join(u.model_text() for u in parse(text).units) if html else text
        guesses = service.detector.detect(visible, top=1)
        found.append(
            DetectedLanguage(language=guesses[0].language, confidence=round(100 * guesses[0].confidence, 1))
            if guesses
            else DetectedLanguage(language=service.fallback_language, confidence=0.0)
        )
    return found


def detected_sources(engine: FrontEnd, detected: list[DetectedLanguage], target: str) -> list[str]:
    """The model code to translate each text from: the target (nothing to do) where none was detected."""
    return [(engine.model_code(d.language) or target) if d.confidence > 0 else target for d in detected]


@router.post(
    "/translate",
    response_model=TranslateResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=_body_doc(TranslateRequest),
    summary="Translate text or HTML (LibreTranslate-compatible)",
)
async def translate(request: Request, response: Response) -> TranslateResponse:
    service = request.app.state.service
    settings: ServerSettings = service.settings
    req = validated(TranslateRequest, await read_payload(request, '{"q": "Hello", "source": "en", "target": "fr"}'))
    check_access(request, req.api_key)
    raw = [req.q] if isinstance(req.q, str) else list(req.q)
    source, target = resolve_pair(service.front, req.source, req.target)
    check_request(req, raw, settings)  # limits first: no work on oversized input
    texts = [clean(t) for t in raw]
    detected = None
    sources = [source] * len(texts)
    if source == "auto":
        detected = await run_in_threadpool(detect_sources, service, texts, req.format == "html")
        sources = detected_sources(service.front, detected, target)
    n_best = 1 + req.alternatives
    try:
        glossary = parse_inline(req.glossary, req.dnt)
    except GlossaryError as err:
        raise BadRequest(str(err)) from None
    glossaries = request_glossaries(request, req.api_key, req.glossary_id, glossary, sources, target)
    if req.format == "html":
        results = await translate_html(service.translator, texts, sources, target, n_best, glossaries=glossaries)
    else:
        results = await service.translator.translate(
            [Text(t, s, target, n_best, glossary=g) for t, s, g in zip(texts, sources, glossaries)]
        )
    for code in sources:
        service.metrics.items.labels(source=service.front.user_code(code), target=service.front.user_code(target)).inc()
    kept_source = sum(r.kept_source for r in results)
    if kept_source:  # sentences whose every translation lost a placeholder: sent back as they came
        response.headers[UNTRANSLATED_HEADER] = str(kept_source)
    best = [r.versions[0] for r in results]
    alternatives = [r.versions[1:] for r in results] if req.alternatives else None
    confidences = [r.confidences for r in results] if req.confidence else None
    if isinstance(req.q, str):
        return TranslateResponse(
            translatedText=best[0],
            alternatives=alternatives[0] if alternatives else None,
            detectedLanguage=detected[0] if detected else None,
            confidence=confidences[0][0] if confidences else None,
            alternativesConfidence=confidences[0][1:] if confidences and req.alternatives else None,
        )
    return TranslateResponse(
        translatedText=best,
        alternatives=alternatives,
        detectedLanguage=detected,
        confidence=[c[0] for c in confidences] if confidences else None,
        alternativesConfidence=[c[1:] for c in confidences] if confidences and req.alternatives else None,
    )


@router.post(
    "/detect",
    response_model=list[DetectedLanguage],
    responses=ERRORS,
    openapi_extra=_body_doc(DetectRequest),
    summary="Detect the language of a text, among the languages served (best first)",
)
async def detect(request: Request) -> list[DetectedLanguage]:
    service = request.app.state.service
    req = validated(DetectRequest, await read_payload(request, '{"q": "Bonjour"}'))
    check_access(request, req.api_key)
    if len(req.q) > service.settings.max_chars_per_item:
        raise PayloadTooLarge(f"q has {len(req.q)} characters; the limit is {service.settings.max_chars_per_item}")
    guesses = await run_in_threadpool(service.detector.detect, clean(req.q), 3)
    if not guesses:
        raise BadRequest("nothing to detect: the text has no letters of a language served here")
    return [DetectedLanguage(language=g.language, confidence=round(100 * g.confidence, 1)) for g in guesses]


@router.get(
    "/languages",
    response_model=list[LanguageEntry],
    summary="Languages served; 'adapter' says which have a language-specific adapter",
)
async def languages(request: Request) -> list[LanguageEntry]:
    engine = request.app.state.service.front
    codes = [(engine.user_code(c), c) for c in engine.languages]
    users = [u for u, _ in codes]
    return [
        LanguageEntry(code=u, name=language_name(m), targets=[t for t in users if t != u], adapter=m in engine.adapters)
        for u, m in codes
    ]
