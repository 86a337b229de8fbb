"""Admin bearer token and API keys, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from server.errors import Forbidden, Unauthorized
from server.settings import ServerSettings


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def require_admin(request: Request) -> None:
    settings: ServerSettings = request.app.state.service.settings
    if settings.admin_token is None:
        raise Forbidden("adapter management is disabled: start the service with LSLO_ADMIN_TOKEN set")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing admin token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"})
    if not _equal(token.strip(), settings.admin_token.get_secret_value()):
        raise Forbidden("invalid admin token")


def check_api_key(settings: ServerSettings, key: str | None) -> str | None:
    """The key in use (None when keys are not required); Forbidden for a missing or unknown key."""
    if not settings.api_keys:
        return None
    if not key:
        raise Forbidden("an API key is required: pass api_key")
    for valid in settings.api_keys:
        if _equal(key, valid):
            return valid
    raise Forbidden("invalid API key")
