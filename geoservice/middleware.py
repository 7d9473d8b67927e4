"""Cross-cutting HTTP behaviour: the audit log of writes, a request time limit, CORS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from geoservice.security import audit_writes
from geoservice.settings import Settings


def add_middleware(app: FastAPI, settings: Settings) -> None:
    """Install the request timeout and, when origins are configured, CORS."""
    limit = settings.request_timeout_s
    app.middleware("http")(audit_writes)

    @app.middleware("http")
    async def request_timeout(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Answer 503 when a request runs past the limit instead of keeping the client waiting.

        Work already in the database is bounded separately by the statement timeout.
        """
        if limit <= 0:
            return await call_next(request)
        try:
            return await asyncio.wait_for(call_next(request), timeout=limit)
        except TimeoutError:
            return JSONResponse(
                {
                    "error": "request_timeout",
                    "detail": f"The request took longer than {limit:g} s and was stopped; "
                    "try a smaller area or layer, or ask an administrator to raise "
                    "GEOSERVICE_REQUEST_TIMEOUT_S.",
                },
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "30"},
            )

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
