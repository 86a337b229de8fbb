"""A bound on every request body, enforced while it streams in (so a chunked upload without Content-Length
cannot grow past it either): past the limit the route reading the body gets ``PayloadTooLarge`` (413)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from server.errors import PayloadTooLarge


class BodyLimit:
    """ASGI middleware; ``limit_for(path)`` is the most bytes a request to ``path`` may send."""

    def __init__(self, app: Any, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:

            async def refuse() -> Message:
                raise PayloadTooLarge(f"request body of {int(declared)} bytes; the limit is {limit}")

            await self.app(scope, refuse, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"request body larger than the limit of {limit} bytes")
            return message

        await self.app(scope, counted, send)
