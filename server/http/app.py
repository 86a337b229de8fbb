"""App factory: the lifespan owns the service (the front end, the engine core's process, metrics); routes and
error handling are installed from their own modules."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from server.core.supervisor import CORE_DIR, shared_settings
from server.http.handlers import install_error_handlers, install_observer
from server.http.limits import BodyLimit
from server.http.routes import adapters, files, frontend, glossaries, ops, translate
from server.runtime.front_end import FrontEnd
from server.runtime.service import Service
from server.settings import ServerSettings

log = logging.getLogger("lslo.server")


def create_app(
    settings: ServerSettings | None = None, core: mp.process.BaseProcess | None = None, shared_core: Path | None = None
) -> FastAPI:
    """``core``: an engine core process already started and loaded (``python -m server`` starts it first to fail
    fast); ``shared_core``: the directory of a core another process owns (``--workers N``); else the lifespan
    starts one from ``settings``."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, FrontEnd(settings), core, shared_core)
        app.state.service = service
        await service.start()
        log.info("ready", extra={"items": len(service.front.languages)})
        try:
            yield
        finally:
            await service.stop()
            log.info("stopped")

    # Swagger UI (/docs) and ReDoc (/redoc) with their assets served from the installed package: an offline
    # deployment gets working pages.
    app = FastAPIOffline(
        title="LSLo translation service",
        version="0.1.0",
        lifespan=lifespan,
        description="Multilingual translation with Language-Specific LoRA adapters. "
        "LibreTranslate-compatible /translate and /languages.",
    )
    app.include_router(translate.router)
    app.include_router(files.router)
    app.include_router(frontend.router)
    app.include_router(adapters.router)
    app.include_router(glossaries.router)
    app.include_router(ops.router)
    # Added first, so innermost of the middlewares: a body over its limit raises in the route reading it, where
    # the error handlers turn it into a 413.
    app.add_middleware(BodyLimit, limit_for=body_limits(settings))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    install_error_handlers(app)
    install_observer(app)
    return app


def worker_app() -> FastAPI:
    """The app of one of ``python -m server --workers N``'s processes (uvicorn's factory): the main process's
    settings and engine core."""
    root = Path(os.environ[CORE_DIR])
    return create_app(shared_settings(root), shared_core=root)


def body_limits(settings: ServerSettings) -> Callable[[str], int]:
    """Files and adapters may be large; every other request holds at most a few texts."""
    slack = 64 * 1024  # multipart boundaries and headers, JSON quoting

    def limit_for(path: str) -> int:
        if path.startswith("/translate_file"):
            return settings.max_file_bytes + slack
        if path.startswith("/adapters"):
            return settings.max_upload_bytes + slack
        return 8 * settings.max_total_chars + slack  # \uXXXX escapes make JSON up to 6 bytes a character

    return limit_for
