"""Cross-cutting HTTP behaviour: the gatekeeper (token and size before the body), the audit
log of writes, a request time limit, security headers on HTML, CORS.

Plain ASGI middleware (not ``@app.middleware("http")``, whose per-request task and stream
plumbing cost more than the tile it wraps when served from the cache).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import Unauthorized
from geoservice.access import record
from geoservice.handlers import error_body
from geoservice.logs import RequestIds
from geoservice.security import (
    PUBLIC_READ_POSTS,
    READ_METHODS,
    resolve_principal,
    token_from,
)
from geoservice.settings import Settings
from geoservice.web_session import CSRF_FIELD, CSRF_HEADER, csrf_ok, session_token

log = logging.getLogger(__name__)
FORM_OVERHEAD = 1 << 20  # multipart boundaries and the small form fields next to the file
WWW_AUTHENTICATE = 'Bearer realm="geoservice", Basic realm="geoservice"'


def _shorten(path: str, most: int = 200) -> str:
    return path if len(path) <= most else path[:most] + f"…(+{len(path) - most})"


class Gatekeeper:
    """Decide on a request from its headers before any body byte is read.

    The token is resolved (401 for an unknown, expired or revoked one, and for an anonymous
    write), the declared ``Content-Length`` is held against the limit for the body's kind
    (uploads: ``GEOSERVICE_MAX_UPLOAD_MB``; anything else: ``GEOSERVICE_MAX_JSON_MB``), and a
    body sent without a length is counted as it arrives and cut at the limit (413).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.upload_limit = settings.max_upload_bytes + FORM_OVERHEAD
        self.json_limit = settings.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse early, or pass the request on with its principal and a counted body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        token = token_from(method, path, headers, query)
        if token is None and (token := session_token(headers)) is not None:
            # A signed-in browser: every write must carry the session's CSRF token too.
            given = headers.get(CSRF_HEADER) or dict(parse_qsl(query)).get(CSRF_FIELD)
            if method not in READ_METHODS and not csrf_ok(token, given):
                await self._refuse(
                    scope,
                    receive,
                    send,
                    403,
                    "csrf",
                    "The form is out of date or did not come from this service. Reload the "
                    "page and try again.",
                )
                return
        try:
            principal = await resolve_principal(scope["app"], token)
        except Unauthorized as exc:
            await self._refuse(scope, receive, send, 401, exc.code, exc.detail)
            return
        except OperationalError as exc:
            log.warning("database unavailable: %s", exc)
            await self._refuse(
                scope,
                receive,
                send,
                503,
                "database_unavailable",
                "The database cannot be reached right now; try again in a moment.",
            )
            return
        scope.setdefault("state", {})["principal"] = principal
        if method in READ_METHODS:
            await self.app(scope, receive, send)
            return
        public_post = path in PUBLIC_READ_POSTS and scope["app"].state.settings.public_reads
        if principal is None and path.startswith("/api/") and not public_post:
            await self._refuse(
                scope,
                receive,
                send,
                401,
                "unauthorized",
                "Changing anything needs a token with the right role (Authorization: Bearer "
                "<token>); ask an administrator for one.",
            )
            return
        is_upload = headers.get("content-type", "").startswith("multipart/form-data")
        limit = self.upload_limit if is_upload else self.json_limit
        what = "GEOSERVICE_MAX_UPLOAD_MB" if is_upload else "GEOSERVICE_MAX_JSON_MB (JSON bodies)"
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(
                scope,
                receive,
                send,
                413,
                "payload_too_large",
                f"The request body is larger than the limit of {limit // (1 << 20)} MB ({what}). "
                "Split the data, simplify the geometry, or import it with the command line.",
            )
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(
                        status.HTTP_413_CONTENT_TOO_LARGE,
                        f"The request body is larger than the limit of {limit // (1 << 20)} MB "
                        f"({what}).",
                    )
            return message

        await self.app(scope, counted, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, code: int, error: str, detail: str
    ) -> None:
        log.info("refused %s %s: %s %s", scope["method"], _shorten(scope["path"]), code, error)
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if code == 401 else {}
        if scope["method"] not in READ_METHODS:
            headers["Connection"] = "close"  # the body is not read
        response = JSONResponse(error_body(error, detail), status_code=code, headers=headers)
        await response(scope, receive, send)


# Writes recorded in the audit log: the API, and the workbench pages that change things.
AUDITED_PREFIXES = ("/api/", "/vurderinger", "/lag", "/restaurering", "/logg-ut")


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
            or not scope["path"].startswith(AUDITED_PREFIXES)
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
            await self._record(scope, status_code)

    async def _record(self, scope: Scope, status_code: int) -> None:
        request = Request(scope)
        principal = getattr(request.state, "principal", None)
        if principal is None or "route" not in scope:
            # Refused before a handler ran (no token, no such route): the server log, not
            # the database, so that nobody can grow the audit log at will.
            log.info("unaudited %s %s: %s", scope["method"], _shorten(scope["path"]), status_code)
            return
        params: dict[str, Any] = scope.get("path_params", {})
        objects = {
            # isdigit() is true of '¹' too, which int() refuses: ASCII digits only.
            **{
                k: int(v) if str(v).isascii() and str(v).isdigit() else v for k, v in params.items()
            },
            **getattr(request.state, "audit", {}),
        }
        await run_in_threadpool(
            record,
            scope["app"].state.engine,
            principal,
            scope["method"],
            scope["path"],
            status_code,
            objects,
        )


# Pages without a policy of their own (the printable report, error pages): nothing runs, only
# inline styles and embedded images render, and no other site may frame them.
DEFAULT_HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# /docs serves Swagger UI from the service and starts it inline.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
# /redoc serves ReDoc's standalone bundle from the service; it starts inline and runs its
# search index in a worker made from a blob.
REDOC_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Every response: ``nosniff`` and no referrer (a URL may carry a token); every HTML
    response also a Content-Security-Policy with ``frame-ancestors 'none'`` (the page's own
    when it has one) and ``X-Frame-Options: DENY`` for older browsers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy_for = {"/docs": DOCS_CSP, "/docs/oauth2-redirect": DOCS_CSP, "/redoc": REDOC_CSP}
        own_policy = policy_for.get(scope["path"], DEFAULT_HTML_CSP)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers.setdefault("Referrer-Policy", "no-referrer")
                if headers.get("content-type", "").startswith("text/html"):
                    policy = headers.get("content-security-policy")
                    if policy is None:
                        policy = own_policy
                    elif "frame-ancestors" not in policy:
                        policy = policy.rstrip("; ") + "; frame-ancestors 'none'"
                    headers["Content-Security-Policy"] = policy
                    same = "frame-ancestors 'self'" in policy
                    headers["X-Frame-Options"] = "SAMEORIGIN" if same else "DENY"
            await send(message)

        await self.app(scope, receive, sending)


class RequestTimeout:
    """Answer 503 when a read runs past the limit instead of keeping the client waiting.

    Writes are exempt: the handler would go on and commit after the client had been told
    that it failed (an upload published after a 503). Work in the database is bounded
    separately by the statement timeout.
    """

    def __init__(self, app: ASGIApp, limit: float) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under the limit; answer 503 if it has not started answering."""
        if (
            scope["type"] != "http"
            or self.limit <= 0
            or (scope["method"] not in READ_METHODS and scope["path"] not in PUBLIC_READ_POSTS)
        ):
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
    """Install the audit log, the request timeout, the gatekeeper (outermost but for CORS)
    and, when origins are configured, CORS."""
    app.add_middleware(AuditWrites)
    app.add_middleware(RequestTimeout, limit=settings.request_timeout_s)
    app.add_middleware(Gatekeeper, settings=settings)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HeadAsGet)
    app.add_middleware(RequestIds)  # outermost: every log line of the request carries its id
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )


class HeadAsGet:
    """``HEAD`` answered like ``GET`` without the body (HTTP and OGC API clients probe with it;
    FastAPI's routes know GET only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a HEAD request as GET and drop the body from the answer."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
