"""One transaction on a pooled connection, as plain psycopg (COPY, staging tables)."""

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
