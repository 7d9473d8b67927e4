"""Cross-cutting HTTP behaviour: the audit log of writes, a request time limit, CORS.

Plain ASGI middleware (not ``@app.middleware("http")``, whose per-request task and stream
plumbing cost more than the tile it wraps when served from the cache).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geoservice.access import record
from geoservice.security import READ_METHODS
from geoservice.settings import Settings


class AuditWrites:
    """Record every write under /api once it is answered: who, the endpoint, its status and
    the objects and versions the handler noted (:func:`geoservice.security.audit_note`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass reads straight through; note the status of writes, then record them."""
        if (
            scope["type"] != "http"
            or scope["method"] in READ_METHODS
            or not scope["path"].startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        status_code = 500

        async def sending(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            request = Request(scope)
            params: dict[str, Any] = scope.get("path_params", {})
            objects = {
                **{k: int(v) if str(v).isdigit() else v for k, v in params.items()},
                **getattr(request.state, "audit", {}),
            }
            await run_in_threadpool(
                record,
                scope["app"].state.engine,
                getattr(request.state, "principal", None),
                scope["method"],
                scope["path"],
                status_code,
                objects,
            )


class RequestTimeout:
    """Answer 503 when a request runs past the limit instead of keeping the client waiting.

    Work already in the database is bounded separately by the statement timeout.
    """

    def __init__(self, app: ASGIApp, limit: float) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under the limit; answer 503 if it has not started answering."""
        if scope["type"] != "http" or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, sending), timeout=self.limit)
        except TimeoutError:
            if started:  # too late to answer otherwise: the response just ends
                return
            response = JSONResponse(
                {
                    "error": "request_timeout",
                    "detail": f"The request took longer than {self.limit:g} s and was stopped; "
                    "try a smaller area or layer, or ask an administrator to raise "
                    "GEOSERVICE_REQUEST_TIMEOUT_S.",
                },
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "30"},
            )
            await response(scope, receive, send)


def add_middleware(app: FastAPI, settings: Settings) -> None:
    """Install the audit log, the request timeout and, when origins are configured, CORS."""
    app.add_middleware(AuditWrites)
    app.add_middleware(RequestTimeout, limit=settings.request_timeout_s)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
