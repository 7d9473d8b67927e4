"""Bearer tokens in, a principal or 401/403 out; every write request lands in the audit log.

``identify`` runs for every API router: it resolves the token (header ``Authorization:
Bearer``, or ``access_token`` in the query of a GET, so map pages can hand it to their tile
requests) and lets reads through when they are public. ``require(role)`` guards each write.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from geoservice.access import Principal, TokenCache, authenticate
from geoservice.errors import Forbidden, Unauthorized

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method in READ_METHODS:
        return request.query_params.get("access_token") or None
    return None


def principal_of(request: Request) -> Principal | None:
    """The caller identified by :func:`identify` (None: anonymous)."""
    found: Principal | None = getattr(request.state, "principal", None)
    return found


async def identify(request: Request) -> None:
    """Resolve the token; refuse unknown tokens, and anonymous reads unless reads are public."""
    token = _token(request)
    principal = None
    if token is not None:
        cache: TokenCache = request.app.state.token_cache
        principal = cache.get(token)
        if principal is None:
            principal = await run_in_threadpool(authenticate, request.app.state.engine, token)
            if principal is None:
                raise Unauthorized("The token is unknown or has been revoked.")
            cache.put(token, principal)
    request.state.principal = principal
    if (
        principal is None
        and request.method in READ_METHODS
        and not request.app.state.settings.public_reads
    ):
        raise Unauthorized(
            "Reading needs a token (Authorization: Bearer <token>); ask an administrator for "
            "one (geoservice tokens create --user NAME --role viewer)."
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
