"""Errors become ``{"error": ...}`` responses here and only here; every request is counted, timed and logged.

A domain error (``ServiceError``) answers its own status. Anything else raised by a route is a bug: its stack
trace goes to the log with the request id, and the client gets ``{"error": "internal error", "request_id": ...}``
so that an operator can find the trace from a user's report. No trace or server path ever reaches a client.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lslo.cli.flags import validation_problems
from server.errors import ServiceError

log = logging.getLogger("lslo.server")


def error(status: int, message: str, headers: dict[str, str] | None = None, **fields: str) -> JSONResponse:
    return JSONResponse({"error": message, **fields}, status_code=status, headers=headers)


def internal_error(request: Request, err: BaseException) -> JSONResponse:
    """Log ``err`` with its stack trace and the request id; the client sees only the id."""
    request_id = getattr(request.state, "request_id", None) or new_request_id()
    # The id is in the message too: the text log format shows no extra fields.
    log.error(
        "unhandled error (request %s) in %s %s",
        request_id,
        request.method,
        request.url.path,
        exc_info=err,
        extra={"request_id": request_id, "route": request.url.path},
    )
    return error(500, "internal error", request_id=request_id)


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, err: ServiceError) -> JSONResponse:
        return error(err.status, err.message, err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        return error(400, "invalid request: " + "; ".join(validation_problems(err.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return error(err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:  # outside the middleware below
        return internal_error(request, err)


def install_observer(app: FastAPI) -> None:
    """Request id (``X-Request-ID`` in and out), metrics by route template and status, one log line each."""

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or new_request_id()
        request.state.request_id = request_id
        try:
            response = await call_next(request)
        except Exception as err:  # noqa: BLE001 - a bug in a route: logged with its trace, answered 500
            response = internal_error(request, err)
        seconds = time.perf_counter() - started
        template = getattr(request.scope.get("route"), "path", "unmatched")
        service = getattr(request.app.state, "service", None)
        if service is not None:
            service.metrics.requests.labels(route=template, status=str(response.status_code)).inc()
            service.metrics.latency.labels(route=template).observe(seconds)
            response.headers["X-LSLO-Replica"] = service.replica
        response.headers["X-Request-ID"] = request_id
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "route": template,
                "status": response.status_code,
                "seconds": round(seconds, 4),
                "client": request.client.host if request.client else None,
            },
        )
        return response
