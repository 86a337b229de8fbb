"""Domain errors of the service and their HTTP status; mapped to ``{"error": ...}`` in one place (app.py)."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class PayloadTooLarge(ServiceError):
    status = 413


class RateLimited(ServiceError):
    status = 429


class Overloaded(ServiceError):
    status = 503


class StartupError(RuntimeError):
    """The service cannot start: says what is missing or wrong, and where."""
