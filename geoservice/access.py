"""Users, API tokens and the audit log: storage and checks, free of web-framework imports.

Tokens are random 32-byte strings shown once; only their SHA-256 is stored, so a database
dump reveals none. Roles: viewer reads; planner assesses proposals and plans; gis uploads
layers; ecologist keeps the restoration registry; admin does all of it and manages factor
tables, presets, users and old versions.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from geoservice.errors import Conflict, InvalidInput, NotFound

ROLES = ("viewer", "planner", "gis", "ecologist", "admin")
TOKEN_PREFIX = "gs_"


@dataclass(frozen=True)
class Principal:
    """Who is calling, with which role."""

    user: str
    role: str

    def may(self, role: str) -> bool:
        """Admins may do everything; any role may read; otherwise the role must match."""
        return self.role == "admin" or role == "viewer" or self.role == role


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def add_user(engine: Engine, name: str) -> int:
    """Create a user (names: letters, digits and . _ @ -)."""
    try:
        with engine.begin() as conn:
            return int(
                conn.execute(
                    text("INSERT INTO geoservice.app_user (name) VALUES (:n) RETURNING id"),
                    {"n": name},
                ).scalar_one()
            )
    except IntegrityError as exc:
        if "unique" in str(exc.orig).lower():
            raise Conflict(f"User {name!r} exists already.", code="user_exists") from exc
        raise InvalidInput(
            f"User name {name!r} may only hold letters, digits and . _ @ - (at most 64).",
            code="bad_user_name",
        ) from exc


def create_token(engine: Engine, user: str, role: str) -> tuple[int, str]:
    """A new token for a user and role: (token id, the token — shown this once)."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}.", code="bad_role")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        user_id = conn.execute(
            text("SELECT id FROM geoservice.app_user WHERE name = :n"), {"n": user}
        ).scalar()
        if user_id is None:
            raise NotFound(
                f"There is no user {user!r}; add it first (geoservice users add {user}).",
                code="user_not_found",
            )
        token_id = conn.execute(
            text(
                "INSERT INTO geoservice.api_token (user_id, role, token_sha256, prefix) "
                "VALUES (:u, :r, :h, :p) RETURNING id"
            ),
            {"u": user_id, "r": role, "h": _digest(token), "p": token[:10]},
        ).scalar_one()
    return int(token_id), token


def revoke_token(engine: Engine, token_id: int) -> None:
    """Revoke a token for good (it stays listed, marked revoked)."""
    with engine.begin() as conn:
        found = conn.execute(
            text(
                "UPDATE geoservice.api_token SET revoked_at = coalesce(revoked_at, now()) "
                "WHERE id = :i RETURNING id"
            ),
            {"i": token_id},
        ).scalar()
    if found is None:
        raise NotFound(f"There is no token {token_id}.", code="token_not_found")


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    """Every token with its user, role and state (never the token itself)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.id, u.name AS user, t.role, t.prefix, t.created_at, t.revoked_at "
                "FROM geoservice.api_token t JOIN geoservice.app_user u ON u.id = t.user_id "
                "ORDER BY t.id"
            )
        ).all()
    return [dict(r._mapping) for r in rows]


class TokenCache:
    """Tokens confirmed recently, so a burst of reads does not ask the database each time.

    Only confirmations are kept, for ``ttl`` seconds (0 = no cache): a revoked token stops
    working within that time; an unknown token is looked up every time.
    """

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[bytes, tuple[Principal, float]] = {}

    def get(self, token: str) -> Principal | None:
        """The principal confirmed for ``token`` less than ``ttl`` ago, else None."""
        hit = self._entries.get(_digest(token)) if self.ttl > 0 else None
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, token: str, principal: Principal) -> None:
        """Remember a confirmation (the cache is emptied when full: simple and bounded)."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[_digest(token)] = (principal, time.monotonic() + self.ttl)


def authenticate(engine: Engine, token: str) -> Principal | None:
    """The principal a token stands for, or None when it is unknown or revoked."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT u.name, t.role FROM geoservice.api_token t "
                "JOIN geoservice.app_user u ON u.id = t.user_id "
                "WHERE t.token_sha256 = :h AND t.revoked_at IS NULL"
            ),
            {"h": _digest(token)},
        ).first()
    return Principal(row.name, row.role) if row else None


def record(
    engine: Engine,
    principal: Principal | None,
    method: str,
    path: str,
    status: int,
    objects: dict[str, Any],
) -> None:
    """Append one write to the audit log."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO geoservice.audit_log "
                "(user_name, role, method, path, status, objects) "
                "VALUES (:u, :r, :m, :p, :s, CAST(:o AS jsonb))"
            ),
            {
                "u": principal.user if principal else None,
                "r": principal.role if principal else None,
                "m": method,
                "p": path,
                "s": status,
                "o": json.dumps(objects, default=str),
            },
        )


def audit_entries(
    engine: Engine, *, limit: int, offset: int, user: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """One page of the audit log, newest first."""
    params = {"limit": limit, "offset": offset, "u": user}
    where = "WHERE CAST(:u AS text) IS NULL OR user_name = :u"
    with engine.connect() as conn:
        total = conn.execute(
            text(f"SELECT count(*) FROM geoservice.audit_log {where}"), params
        ).scalar_one()
        rows = conn.execute(
            text(
                "SELECT id, at, user_name AS user, role, method, path, status, objects "
                f"FROM geoservice.audit_log {where} ORDER BY id DESC LIMIT :limit OFFSET :offset"
            ),
            params,
        ).all()
    return [{**dict(r._mapping), "at": r.at.isoformat()} for r in rows], int(total)


def command_line_user() -> str:
    """Who runs a command-line write: the operating-system user (the CLI has no token)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        name = "unknown"
    return f"{name} (command line)"


def record_command(engine: Engine, command: str, objects: dict[str, Any]) -> None:
    """Audit a write made from the command line, which talks to the database directly.

    Logged like an API write: method ``CLI``, the command as the path, status 0 (success).
    """
    record(engine, Principal(command_line_user(), "cli"), "CLI", command, 0, objects)
