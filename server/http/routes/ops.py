"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from server.http.schemas import ErrorBody

router = APIRouter(tags=["operations"])


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Model and adapters are loaded and requests are accepted",
    responses={503: {"model": ErrorBody, "description": "starting or shutting down"}},
)
async def ready(request: Request) -> Response:
    service = request.app.state.service
    if not service.ready:
        return JSONResponse({"error": "not ready"}, status_code=503, headers={"Retry-After": "5"})
    front = service.front
    return JSONResponse(
        {"status": "ready", "languages": len(front.languages), "device": front.state.device, "dtype": front.state.dtype}
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format",
        }
    },
)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.service.metrics.render(), media_type=CONTENT_TYPE_LATEST)
