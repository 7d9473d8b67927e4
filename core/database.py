"""One transaction on a pooled connection, as plain psycopg (COPY, staging tables); the
database URL in the forms SQLAlchemy and libpq want."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine


@contextmanager
def psycopg_transaction(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection as plain psycopg (for COPY), committed on success, else rolled back.

    Bulk work (COPY, staging tables) needs the driver's own API; this keeps the pool, the
    connection options and the all-or-nothing rule in one place.
    """
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        if not isinstance(conn, psycopg.Connection):
            raise TypeError("the engine does not use psycopg 3")
        yield conn
        conn.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def sqlalchemy_url(libpq_url: str) -> str:
    """Turn a libpq URL into the form SQLAlchemy needs to pick the psycopg 3 driver."""
    _, sep, rest = libpq_url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {libpq_url!r}")
    return f"postgresql+psycopg://{rest}"


def libpq_url(url: str) -> str:
    """Inverse of :func:`sqlalchemy_url`: the plain form psql and psycopg understand."""
    _, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    return f"postgresql://{rest}"
