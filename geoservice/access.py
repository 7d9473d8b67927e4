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
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)
ROLES = ("viewer", "planner", "gis", "ecologist", "admin")
TOKEN_PREFIX = "gs_"


@dataclass(frozen=True)
class Principal:
    """Who is calling, with which role."""

    user: str
    role: str
    expires_in: float | None = None  # seconds left when the token was checked

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


def create_token(
    engine: Engine, user: str, role: str, *, expires_in: timedelta | None = None
) -> tuple[int, str]:
    """A new token for a user and role: (token id, the token — shown this once); with
    ``expires_in`` it stops working after that long."""
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
                "INSERT INTO geoservice.api_token "
                "(user_id, role, token_sha256, prefix, expires_at) "
                "VALUES (:u, :r, :h, :p, now() + CAST(:e AS interval)) RETURNING id"
            ),
            {
                "u": user_id,
                "r": role,
                "h": _digest(token),
                "p": token[:10],
                "e": f"{int(expires_in.total_seconds())} seconds" if expires_in else None,
            },
        ).scalar_one()
    return int(token_id), token


def parse_duration(text_value: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``2w``: how long a new token lasts."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value = text_value.strip().lower()
    if len(value) >= 2 and value[:-1].isdigit() and value[-1] in units and int(value[:-1]) > 0:
        return timedelta(**{units[value[-1]]: int(value[:-1])})
    raise InvalidInput(
        f"{text_value!r} is not a duration; write a number and a unit: 90d (days), 12h (hours), "
        "30m (minutes) or 2w (weeks).",
        code="bad_duration",
    )


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


def revoke_token_value(engine: Engine, token: str) -> None:
    """Revoke the token itself (a workbench session signing out; it knows no id)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE geoservice.api_token SET revoked_at = coalesce(revoked_at, now()) "
                "WHERE token_sha256 = :h"
            ),
            {"h": _digest(token)},
        )


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    """Every token with its user, role and state (never the token itself)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.id, u.name AS user, t.role, t.prefix, t.created_at, t.expires_at, "
                "t.revoked_at "
                "FROM geoservice.api_token t JOIN geoservice.app_user u ON u.id = t.user_id "
                "ORDER BY t.id"
            )
        ).all()
    return [dict(r._mapping) for r in rows]


class TokenCache:
    """Tokens confirmed recently, so a burst of reads does not ask the database each time.

    Only confirmations are kept, for ``ttl`` seconds (0 = no cache), never past a token's
    expiry. The cache is trusted only while :class:`RevocationListener` is connected: every
    change to a token makes PostgreSQL notify every service process, which empties its
    cache, so a revocation takes effect at once everywhere.
    """

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self.listening = False
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        """The principal confirmed for ``token`` less than ``ttl`` ago, else None."""
        if self.ttl <= 0 or not self.listening:
            return None
        hit = self._entries.get(_digest(token))
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, token: str, principal: Principal) -> None:
        """Remember a confirmation (the cache is emptied when full: simple and bounded)."""
        if self.ttl <= 0 or not self.listening:
            return
        until = time.monotonic() + self.ttl
        if principal.expires_in is not None:
            until = min(until, time.monotonic() + principal.expires_in)
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[_digest(token)] = (principal, until)

    def clear(self) -> None:
        """Forget every confirmation (a token changed somewhere)."""
        with self._lock:
            self._entries.clear()


class RevocationListener:
    """A thread that LISTENs for token changes and empties the cache when one comes.

    While it is not connected the cache is bypassed, so a lost connection can only make
    requests slower, never let a revoked token through.
    """

    CHANNEL = "geoservice_tokens"

    def __init__(self, url: str, cache: TokenCache) -> None:
        self.url = url
        self.cache = cache
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="token-listener", daemon=True)

    def start(self) -> None:
        """Start listening (returns at once)."""
        if self.cache.ttl > 0:
            self._thread.start()

    def stop(self) -> None:
        """Stop listening and stop trusting the cache."""
        self._stop.set()
        self.cache.listening = False
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, connect_timeout=5, application_name="geoservice"
                ) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.CHANNEL)))
                    self.cache.clear()
                    self.cache.listening = True
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.cache.clear()
                        conn.execute("SELECT 1")  # notices a dead connection
            except psycopg.Error as exc:
                log.warning("token listener disconnected (%s); cache off", type(exc).__name__)
            finally:
                self.cache.listening = False
                self.cache.clear()
            self._stop.wait(2.0)


def authenticate(engine: Engine, token: str) -> Principal | None:
    """The principal a token stands for, or None when it is unknown, expired or revoked."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT u.name, t.role, "
                "       extract(epoch FROM t.expires_at - now()) AS expires_in "
                "  FROM geoservice.api_token t "
                "  JOIN geoservice.app_user u ON u.id = t.user_id "
                " WHERE t.token_sha256 = :h AND t.revoked_at IS NULL "
                "   AND (t.expires_at IS NULL OR t.expires_at > now())"
            ),
            {"h": _digest(token)},
        ).first()
    if row is None:
        return None
    expires = float(row.expires_in) if row.expires_in is not None else None
    return Principal(row.name, row.role, expires)


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
