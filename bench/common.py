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
