"""App factory: lifespan owns the engine and the batcher; errors become ``{"error": ...}`` here and only here."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.engine import TranslationEngine
from server.errors import ServiceError
from server.routes import adapters, ops, translate
from server.service import Service
from server.settings import ServerSettings

log = logging.getLogger("lslo.server")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(settings: ServerSettings | None = None, engine: TranslationEngine | None = None) -> FastAPI:
    """``engine`` may be given pre-loaded (``python -m server`` loads it first to fail fast); else the
    lifespan loads it from ``settings``."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, engine or TranslationEngine(settings))
        app.state.service = service
        service.start()
        log.info("ready", extra={"items": len(service.engine.languages)})
        try:
            yield
        finally:
            await service.stop()
            log.info("stopped")

    app = FastAPI(title="LSLo translation service", version="0.1.0", lifespan=lifespan,
                  description="Multilingual translation with Language-Specific LoRA adapters. "
                              "LibreTranslate-compatible /translate and /languages.")
    app.include_router(translate.router)
    app.include_router(adapters.router)
    app.include_router(ops.router)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["*"])

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, err: ServiceError) -> JSONResponse:
        return error(err.status, err.message, err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        return error(400, "invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return error(err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"route": request.url.path})
        return error(500, "internal error")

    @app.middleware("http")
    async def observe(request: Request, call_next) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        try:
            response = await call_next(request)
        except Exception:  # noqa: BLE001 - the handler above already logged it
            response = error(500, "internal error")
        seconds = time.perf_counter() - started
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        service = getattr(request.app.state, "service", None)
        if service is not None:
            service.metrics.requests.labels(route=template, status=str(response.status_code)).inc()
            service.metrics.latency.labels(route=template).observe(seconds)
        response.headers["X-Request-ID"] = request_id
        log.info("request", extra={"request_id": request_id, "route": template, "status": response.status_code,
                                   "seconds": round(seconds, 4), "client": request.client.host if request.client
                                   else None})
        return response

    return app
