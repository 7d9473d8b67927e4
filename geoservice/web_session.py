"""Signing in to the workbench: an API token turned into a session cookie, and CSRF tokens.

Signing in checks the person's API token and gives the browser a *new* token of the same
user and role that expires after ``SESSION_HOURS`` (the one way the service knows callers:
revocation, expiry and the audit log work as for any token); signing out revokes it. The
cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it) and
Secure when the page came over HTTPS. Every write made with the cookie must also carry the
session's CSRF token (a form field sent in the URL, or the ``X-CSRF-Token`` header), an HMAC
of the session token that a page of another origin cannot know.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from starlette.datastructures import Headers
from starlette.responses import Response

SESSION_COOKIE = "gs_session"
LOGIN_COOKIE = "gs_login"  # CSRF for the sign-in form itself (before there is a session)
SESSION_HOURS = 12
SESSION_LIFETIME = timedelta(hours=SESSION_HOURS)
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def cookie(headers: Headers, name: str) -> str | None:
    """One cookie's value from the request headers."""
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def session_token(headers: Headers) -> str | None:
    """The session token a signed-in browser sends."""
    return cookie(headers, SESSION_COOKIE)


def csrf_for(secret: str) -> str:
    """The CSRF token that belongs to a session (or to a sign-in form's cookie)."""
    return hmac.new(secret.encode(), b"geoservice-csrf", hashlib.sha256).hexdigest()[:40]


def csrf_ok(secret: str, given: str | None) -> bool:
    """Whether a write carries the session's CSRF token (compared in constant time)."""
    return given is not None and hmac.compare_digest(csrf_for(secret), given)


def new_login_secret() -> str:
    """A random value for the sign-in form's cookie."""
    return secrets.token_urlsafe(24)


def _set(response: Response, name: str, value: str, *, secure: bool, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def set_session(response: Response, token: str, *, secure: bool) -> None:
    """Give the browser its session."""
    _set(response, SESSION_COOKIE, token, secure=secure, max_age=SESSION_HOURS * 3600)
    response.delete_cookie(LOGIN_COOKIE, path="/")


def set_login_secret(response: Response, secret: str, *, secure: bool) -> None:
    """The sign-in form's own CSRF cookie."""
    _set(response, LOGIN_COOKIE, secret, secure=secure, max_age=3600)


def clear_session(response: Response) -> None:
    """Forget the session in the browser."""
    response.delete_cookie(SESSION_COOKIE, path="/")
