"""Helpers every benchmark shares: a throwaway PostGIS and timing statistics."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from geoservice import migrate
from geoservice.embedded import EmbeddedCluster


@contextmanager
def throwaway_postgis() -> Iterator[str]:
    """A migrated PostGIS database in a temporary cluster, deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="geoservice-bench-"))
    root.chmod(0o755)
    cluster = EmbeddedCluster(root / "postgres", extra_conf={"fsync": "off"})
    try:
        url = cluster.start()
        migrate.upgrade(url)
        yield url
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def time_calls(fn: Callable[[], Any], n: int, warmup: int = 20) -> dict[str, float]:
    """Latency statistics (ms) and throughput (calls/s) of ``n`` sequential calls."""
    for _ in range(warmup):
        fn()
    samples = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    total = time.perf_counter() - start
    samples.sort()
    return {
        "n": n,
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(0.95 * (n - 1))], 3),
        "per_s": round(n / total, 1),
    }


def peer_table(conn: Any, table: str, version_id: int) -> tuple[float, float, float, float]:
    """A layer version as a plain table ``bench.<table>`` (fid, arealtype, geom), the way
    peers such as tipg read features; returns its extent in EPSG:25833."""
    from sqlalchemy import text

    conn.execute(text("CREATE SCHEMA IF NOT EXISTS bench"))
    conn.execute(
        text(
            f"CREATE TABLE bench.{table} AS SELECT fid, (attrs->>'arealtype')::int AS "
            "arealtype, geom::geometry(MultiPolygon, 25833) AS geom "
            "FROM geoservice.feature WHERE version_id = :v"
        ),
        {"v": version_id},
    )
    conn.execute(text(f"ALTER TABLE bench.{table} ADD PRIMARY KEY (fid)"))
    conn.execute(text(f"CREATE INDEX ON bench.{table} USING gist (geom)"))
    conn.execute(text(f"ANALYZE bench.{table}"))
    box = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            f"FROM (SELECT ST_Extent(geom) AS e FROM bench.{table}) t"
        )
    ).one()
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])
