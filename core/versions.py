"""The one place that hands out version numbers: layers, factor tables, presets, projects.

Versions are numbered per thing (a layer, a table name, a preset name, a project). Two
writers of the same thing must not both see the same highest number, so the number is taken
under a transaction-scoped advisory lock on that thing, and the lock is held until the writer
commits: the second writer waits, then sees the first one's version.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection

# What is versioned: the table holding the versions and the column naming the thing.
VERSIONED = {
    "layer": ("layer_version", "layer_id"),
    "factor_table": ("carbon_factor_table", "name"),
    "preset": ("method_preset", "name"),
    "restoration_project": ("restoration_project_history", "project_id"),
}


def next_version(conn: Connection | psycopg.Connection[Any], thing: str, key: object) -> int:
    """Lock ``thing`` ``key`` for the rest of the transaction and return its next version."""
    table, column = VERSIONED[thing]
    raw = conn if isinstance(conn, psycopg.Connection) else conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("versions are handed out on psycopg 3 connections")
    with raw.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{thing}:{key}",))
        cur.execute(
            sql.SQL("SELECT coalesce(max(version), 0) + 1 FROM {} WHERE {} = %s").format(
                sql.Identifier("geoservice", table), sql.Identifier(column)
            ),
            (key,),
        )
        row = cur.fetchone()
    assert row is not None
    return int(row[0])
