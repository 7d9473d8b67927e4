"""Log lines: every one carries the request's id, none carries a token.

Tokens reach URLs only on reads of the OGC API, tiles and maps (for clients that cannot send
headers); uvicorn's access log prints those URLs.
"""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import re
import uuid
from typing import Any

_TOKEN = re.compile(r"(access_token=)[^&\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """The text with every ``access_token`` value replaced by ``***``."""
    return _TOKEN.sub(r"\1***", text)


class RedactTokens(logging.Filter):
    """Blank tokens in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Put the filter on the loggers that print URLs (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error", "geoservice"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with the filter on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    for handler in config.get("handlers", {}).values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config


# The request being served, for every log line written while serving it.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIds:
    """Give every request an id (the client's ``X-Request-ID`` when it is a plain token of
    at most 64 characters, else a new one), answer it in ``X-Request-ID`` and put it on every
    log line written meanwhile."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Set the id for the request's context and echo it in the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                given = value.decode("latin-1")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex[:16]
        token = request_id.set(rid)

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            request_id.reset(token)


class WithRequestId(logging.Filter):
    """Put the current request id on a record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Never drop the record."""
        record.request_id = request_id.get()
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON, tokens blanked."""
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(json_lines: bool) -> None:
    """The service's own log lines (``geoservice.*`` and the libraries) with request ids:
    ``time level logger [request id] message``, or JSON lines."""
    handler = logging.StreamHandler()
    handler.addFilter(WithRequestId())
    handler.addFilter(RedactTokens())
    handler.setFormatter(
        JsonLines()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_geoservice", False)]
    handler._geoservice = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if root.level == logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
