"""Domain exceptions shared by every package; free of web-framework imports.

Each exception carries a stable machine-readable ``code`` and a ``detail`` written for a GIS
user. The HTTP layer (:mod:`geoservice.handlers`) maps the classes to status codes.
"""

from __future__ import annotations

from typing import Any


class GeoServiceError(Exception):
    """Base class: anything the service can explain to the person who caused it."""

    code = "error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class NotFound(GeoServiceError):
    """The thing asked for does not exist."""

    code = "not_found"


class InvalidInput(GeoServiceError):
    """The request or file is well formed enough to read but wrong in content."""

    code = "invalid_input"


class BadRequest(GeoServiceError):
    """The request itself cannot be understood."""

    code = "bad_request"


class Unauthorized(GeoServiceError):
    """No valid token came with a request that needs one."""

    code = "unauthorized"


class Forbidden(GeoServiceError):
    """The token is valid but its role may not do this."""

    code = "forbidden"


class Conflict(GeoServiceError):
    """The request clashes with the current state (e.g. a duplicate name)."""

    code = "conflict"


class PayloadTooLarge(GeoServiceError):
    """An upload exceeds a configured limit."""

    code = "payload_too_large"


class ServiceUnavailable(GeoServiceError):
    """A dependency (usually the database) cannot be reached right now."""

    code = "service_unavailable"


class SetupError(GeoServiceError):
    """The machine lacks something the service needs (PostgreSQL, PostGIS, permissions)."""

    code = "setup_error"
