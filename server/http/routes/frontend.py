"""The web page at ``/`` (with its script and style, served from the package: no CDN) and
``GET /frontend/settings``, the LibreTranslate keys the page (and LibreTranslate's own front-ends) read."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from lslo.languages.codes import language_name
from server.documents import FORMATS

router = APIRouter()
STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


def _static(name: str) -> bytes:
    return resources.files("server.http").joinpath("static", name).read_bytes()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_static("index.html"))


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    if name not in STATIC:  # a fixed set: nothing a client names reaches the file system
        return Response(status_code=404)
    return Response(_static(name), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


@router.get("/frontend/settings", summary="Settings for web front-ends (LibreTranslate's keys)")
async def frontend_settings(request: Request) -> dict[str, Any]:
    service = request.app.state.service
    settings = service.settings
    languages = [service.front.user_code(c) for c in service.front.languages]
    others = [c for c in languages if c != "en"] or languages or ["en"]
    target = "fr" if "fr" in others else others[0]
    return {
        "charLimit": settings.max_chars_per_item,
        "frontendTimeout": settings.frontend_timeout_ms,
        "apiKeys": bool(settings.api_keys),
        "keyRequired": bool(settings.api_keys),
        "suggestions": False,
        "filesTranslation": True,
        "supportedFilesFormat": list(FORMATS),
        "maxAlternatives": settings.max_alternatives,
        "language": {
            "source": {"code": "auto", "name": "Detect language"},
            "target": {"code": target, "name": language_name(target)},
        },
    }
