"""Bearer tokens in, a principal or 401/403 out; every write request lands in the audit log.

The gatekeeper middleware resolves the token before any body byte is read (header
``Authorization: Bearer``, HTTP Basic with the token as password, or ``access_token`` in the
URL of OGC API, tile and map reads); ``identify`` runs for every data router and lets
anonymous reads through only when they are public; ``require(role)`` guards each write.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from core.errors import Forbidden, Unauthorized
from geoservice.access import Principal, TokenCache, authenticate

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Clients that cannot send headers (QGIS, GDAL, a map page's tile requests) may put the token
# in the URL, for reads of these paths only.
URL_TOKEN_PATHS = ("/ogc", "/tiles/", "/maps/")
# Reads sent as POST (a drawn polygon is too large for a URL): public when reads are.
PUBLIC_READ_POSTS = frozenset({"/api/restoration/progress"})


def token_from(method: str, path: str, headers: Headers, query: str) -> str | None:
    """The token of a request: ``Authorization: Bearer``, HTTP Basic with the token as the
    password (what QGIS sends; any user name), or ``access_token`` in the URL of a read of
    the OGC API, tiles or maps."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        password = decoded.partition(":")[2]
        return password or None
    if method in READ_METHODS and path.startswith(URL_TOKEN_PATHS):
        for key, found in parse_qsl(query, keep_blank_values=False):
            if key == "access_token" and found:
                return found
    return None


async def resolve_principal(app: Any, token: str | None) -> Principal | None:
    """The principal behind a token (None without one); an unknown, revoked or expired token
    is refused."""
    if token is None:
        return None
    cache: TokenCache = app.state.token_cache
    principal = cache.get(token)
    if principal is None:
        principal = await run_in_threadpool(authenticate, app.state.engine, token)
        if principal is None:
            raise Unauthorized("The token is unknown, has expired or has been revoked.")
        cache.put(token, principal)
    return principal


def principal_of(request: Request) -> Principal | None:
    """The caller identified by :func:`geoservice.middleware.Gatekeeper` (None: anonymous)."""
    found: Principal | None = getattr(request.state, "principal", None)
    return found


async def identify(request: Request) -> None:
    """Refuse anonymous reads unless reads are public (the token was checked already,
    before the body was read, by the gatekeeper middleware)."""
    if (
        principal_of(request) is None
        and request.method in READ_METHODS
        and not request.app.state.settings.public_reads
    ):
        raise Unauthorized(
            "Reading needs a token (Authorization: Bearer <token>, or HTTP Basic with the "
            "token as password); ask an administrator for one "
            "(geoservice tokens create --user NAME --role viewer)."
        )


def require(role: str) -> Any:
    """A dependency that lets the request through only for ``role`` (or admin)."""

    async def check(request: Request) -> Principal | None:
        principal = principal_of(request)
        if principal is None:
            if role == "viewer" and request.app.state.settings.public_reads:
                return None
            raise Unauthorized(
                f"This needs a token with the {role} role (Authorization: Bearer <token>)."
            )
        if not principal.may(role):
            raise Forbidden(
                f"Your token has the {principal.role} role; this needs {role}"
                + ("" if role == "admin" else " or admin")
                + "."
            )
        return principal

    return Depends(check)


def audit_note(request: Request, **objects: Any) -> None:
    """What a write changed (ids, versions before and after), for the audit log."""
    current: dict[str, Any] = getattr(request.state, "audit", {})
    request.state.audit = {**current, **objects}


PlannerDep = Annotated[Principal, require("planner")]
GisDep = Annotated[Principal, require("gis")]
EcologistDep = Annotated[Principal, require("ecologist")]
AdminDep = Annotated[Principal, require("admin")]
ReaderDep = Annotated[Principal | None, require("viewer")]
