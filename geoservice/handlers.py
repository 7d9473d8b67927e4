"""The one place where domain exceptions become HTTP responses.

Every error body has the shape ``{"error": <code>, "detail": <message a person understands>}``
plus optional extra fields the exception carries (e.g. the offending feature ids).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import errors

log = logging.getLogger(__name__)

STATUS_CODES: dict[type[errors.GeoServiceError], int] = {
    errors.BadRequest: status.HTTP_400_BAD_REQUEST,
    errors.Unauthorized: status.HTTP_401_UNAUTHORIZED,
    errors.Forbidden: status.HTTP_403_FORBIDDEN,
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.PayloadTooLarge: status.HTTP_413_CONTENT_TOO_LARGE,
    errors.InvalidInput: status.HTTP_422_UNPROCESSABLE_CONTENT,
    errors.ServiceUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
    errors.SetupError: status.HTTP_503_SERVICE_UNAVAILABLE,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "service_unavailable",
}


def status_for(exc: errors.GeoServiceError) -> int:
    """Status of the nearest mapped class in the exception's ancestry."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The JSON body every error response uses: ours (``error``, ``detail``) and the OGC API
    exception's (``code``, ``description``), so OGC clients and schema checks find theirs."""
    return {"error": code, "detail": detail, "code": code, "description": detail, **extra}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "the request is not valid"


def add_exception_handlers(app: FastAPI) -> None:
    """Register JSON handlers for domain, validation, HTTP and database errors."""

    @app.exception_handler(errors.GeoServiceError)
    async def _domain(_: Request, exc: errors.GeoServiceError) -> JSONResponse:
        headers = (
            {"WWW-Authenticate": 'Bearer realm="geoservice", Basic realm="geoservice"'}
            if isinstance(exc, errors.Unauthorized)
            else None
        )
        return JSONResponse(
            error_body(exc.code, exc.detail, **exc.extra), status_for(exc), headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
        if request.url.path.startswith("/ogc"):
            # OGC API - Features: a malformed address is "not found", a bad parameter 400.
            in_path = any(e.get("loc", ("",))[0] == "path" for e in exc.errors())
            status_code = status.HTTP_404_NOT_FOUND if in_path else status.HTTP_400_BAD_REQUEST
        return JSONResponse(error_body("invalid_request", _describe_validation(exc)), status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            error_body(
                "database_unavailable",
                "The database cannot be reached right now; try again in a moment.",
            ),
            status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate == "57014":  # query_canceled: statement_timeout hit
            return JSONResponse(
                error_body(
                    "timeout",
                    "The database took too long to answer; narrow the request (smaller area, "
                    "fewer features) or try again later.",
                ),
                status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        nul_refused = sqlstate is None and isinstance(exc.orig, psycopg.DataError)
        if nul_refused or (sqlstate or "").startswith("22"):
            # A value from the request that PostgreSQL cannot take (class 22: data exception,
            # or a NUL character psycopg refuses to send).
            log.warning("bad value reached the database: %s", exc.orig)
            return JSONResponse(
                error_body(
                    "bad_value",
                    f"A value in the request cannot be used: {_first_line(exc.orig)}",
                ),
                status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
        log.exception("database error")
        return JSONResponse(
            error_body("internal_error", "An unexpected database error occurred."),
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )


def _first_line(exc: BaseException | None) -> str:
    """The first line of a database message (the rest is context for developers)."""
    text = str(exc or "").strip().splitlines()
    return text[0] if text else "invalid value"
