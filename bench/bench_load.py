"""A bounded load test on loopback: 50 concurrent clients for 60 s mixing reads, vector
tiles and proposal assessments, plus 2 uploads, against the demo data; then the read part
alone (tiles + OGC API items) against tipg serving the same rows from the same database.

Clients are asyncio tasks in one process (httpx); the service runs as its own uvicorn
process as ``geoservice serve`` does, with reads private (every request carries a token).
Any answer other than 2xx/304, or a connection error, counts as an error.

``BENCH_LOAD_CLIENTS`` (50), ``BENCH_LOAD_SECONDS`` (60) and ``BENCH_LOAD_READ_SECONDS``
(30, for the comparison with tipg) change the run.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pyproj import Transformer
from sqlalchemy import text

from bench.common import peer_table, throwaway_postgis
from bench.servers import OUR_CMD, bench_token, http_server, our_env, peer_python
from geoservice.database import create_db_engine
from geoservice.demo import (
    DEMO_DATA,
    DEMO_LAYERS,
    load_demo,
    load_demo_plan_analysis,
    load_demo_proposals,
    load_demo_restoration,
)
from geoservice.settings import Settings

OK = {200, 201, 204, 304}
ZOOMS = (12, 13, 14, 15)


@dataclass
class Tally:
    """Latencies and errors per kind of request."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)

    async def timed(self, kind: str, call: Awaitable[httpx.Response]) -> None:
        started = time.perf_counter()
        try:
            response = await call
            good = response.status_code in OK
            what = f"{kind}: {response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            good, what = False, f"{kind}: {type(exc).__name__} {exc}"
        self.latencies[kind].append((time.perf_counter() - started) * 1000)
        if not good:
            self.errors[kind] += 1
            if len(self.examples) < 5:
                self.examples.append(what)


def _tiles(bounds: tuple[float, float, float, float]) -> list[tuple[int, int, int]]:
    """XYZ tiles over a lon/lat box at the zooms a planner browses."""
    x0, y0, x1, y1 = bounds
    out = []
    for z in ZOOMS:
        n = 2**z

        def xy(lon: float, lat: float, n: int = n) -> tuple[int, int]:
            y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
            return int((lon + 180) / 360 * n), int(y)

        (ax, ay), (bx, by) = xy(x0, y1), xy(x1, y0)
        out += [(z, x, y) for x in range(ax, bx + 1) for y in range(ay, by + 1)]
    return out


async def _run_clients(
    clients: int, seconds: float, pick: Callable[[httpx.AsyncClient, Tally], Awaitable[None]]
) -> tuple[Tally, float]:
    """``clients`` tasks calling ``pick`` back to back until time is up."""
    tally = Tally()
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        deadline = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < deadline:
                await pick(http, tally)

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        return tally, time.monotonic() - started


def _rows(run: str, tally: Tally, elapsed: float) -> list[dict[str, Any]]:
    rows = []
    kinds = sorted(tally.latencies)
    for kind in [*kinds, "all"]:
        samples = (
            [s for k in kinds for s in tally.latencies[k]]
            if kind == "all"
            else tally.latencies[kind]
        )
        errors = sum(tally.errors.values()) if kind == "all" else tally.errors[kind]
        cuts = statistics.quantiles(samples, n=20) if len(samples) > 1 else samples * 19
        rows.append(
            {
                "bench": "load",
                "run": run,
                "requests": kind,
                "count": len(samples),
                "per_s": round(len(samples) / elapsed, 1),
                "p50_ms": round(statistics.median(samples), 1) if samples else None,
                "p95_ms": round(cuts[18], 1) if samples else None,
                "errors": errors,
            }
        )
    return rows


def say(_: str) -> None:
    """The demo loaders' messages are not part of the bench output."""


def run() -> list[dict[str, Any]]:
    """The mixed load on ours; the read part on ours and on tipg."""
    clients = int(os.environ.get("BENCH_LOAD_CLIENTS", "50"))
    seconds = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
    read_seconds = float(os.environ.get("BENCH_LOAD_READ_SECONDS", "30"))
    tipg_python = peer_python()
    rows: list[dict[str, Any]] = []
    with throwaway_postgis() as url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=url, migrate_on_start=False, data_dir=Path(tmp) / "d")
        engine = create_db_engine(url, settings)
        layer_ids = load_demo(engine, settings, say=say)
        by_kind = {item.kind: lid for item, lid in zip(DEMO_LAYERS, layer_ids, strict=True)}
        load_demo_restoration(engine, settings, say=say)
        proposals = load_demo_proposals(engine, settings, say=say)
        load_demo_plan_analysis(engine, by_kind["land_use_plan"], say=say)
        tokens = {role: bench_token(url, role) for role in ("viewer", "planner", "gis")}
        n50 = by_kind["land_cover"]
        with engine.begin() as conn:
            version = conn.execute(
                text("SELECT active_version_id FROM geoservice.layer WHERE id = :l"), {"l": n50}
            ).scalar_one()
            box = peer_table(conn, "n50", version)
            # Proposal sites on land cover (the extent's corners are outside Ås).
            sites = conn.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
                    "FROM bench.n50 WHERE ST_Area(geom) > 40000) t"
                )
            ).all()
        engine.dispose()
        to_wgs = Transformer.from_crs(25833, 4326, always_xy=True)
        lon0, lat0 = to_wgs.transform(box[0], box[1])
        lon1, lat1 = to_wgs.transform(box[2], box[3])
        tiles = _tiles((lon0, lat0, lon1, lat1))
        rng = random.Random(7)
        upload_file = (
            DEMO_DATA / DEMO_LAYERS[[i.kind for i in DEMO_LAYERS].index("land_cover")].path
        )

        def bbox_query() -> str:
            w, h = (lon1 - lon0) / 4, (lat1 - lat0) / 4
            x, y = rng.uniform(lon0, lon1 - w), rng.uniform(lat0, lat1 - h)
            return f"{x:.5f},{y:.5f},{x + w:.5f},{y + h:.5f}"

        def reads(base: str, tile: str, items: str, headers: dict[str, str]) -> Any:
            async def pick(http: httpx.AsyncClient, tally: Tally) -> None:
                if rng.random() < 0.6:
                    z, x, y = rng.choice(tiles)
                    url = base + tile.format(z=z, x=x, y=y)
                    await tally.timed("tile", http.get(url, headers=headers))
                else:
                    url = base + items + "?limit=100&bbox=" + bbox_query()
                    await tally.timed("ogc items", http.get(url, headers=headers))

            return pick

        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        planner = {"Authorization": f"Bearer {tokens['planner']}"}
        gis = {"Authorization": f"Bearer {tokens['gis']}"}
        our_tile = f"/tiles/{n50}/{{z}}/{{x}}/{{y}}.pbf"
        our_items = f"/ogc/collections/{n50}/items"

        def mixed(base: str) -> Any:
            read = reads(base, our_tile, our_items, viewer)

            async def pick(http: httpx.AsyncClient, tally: Tally) -> None:
                roll = rng.random()
                if roll < 0.6:
                    await read(http, tally)
                elif roll < 0.8:
                    path = rng.choice(
                        [
                            "/api/layers",
                            f"/api/layers/{n50}",
                            f"/api/proposals/{rng.choice(proposals)}",
                            "/api/restoration/progress?region=3218",
                            "/api/restoration/projects?limit=20",
                        ]
                    )
                    await tally.timed("api reads", http.get(base + path, headers=viewer))
                else:
                    side = rng.uniform(50, 150)
                    cx, cy = rng.choice(sites)
                    x, y = cx - side / 2, cy - side / 2
                    ring = [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]
                    body = {
                        "footprint": {"type": "Polygon", "coordinates": [ring]},
                        "crs": "EPSG:25833",
                        "arealformal": 1110,
                    }
                    call = http.post(base + "/api/proposals", json=body, headers=planner)
                    await tally.timed("assessment", call)

            return pick

        async def mixed_with_uploads(base: str) -> tuple[Tally, float]:
            data = upload_file.read_bytes()

            async def uploads(tally: Tally) -> None:
                async with httpx.AsyncClient(timeout=300) as http:
                    for delay in (seconds / 6, seconds / 3):
                        await asyncio.sleep(delay)
                        call = http.post(
                            base + "/api/layers",
                            files={"file": (upload_file.name, data)},
                            data={"kind": "land_cover", "name": "N50 Ås (last)"},
                            headers=gis,
                        )
                        await tally.timed("upload", call)

            side = Tally()
            (tally, elapsed), _ = await asyncio.gather(
                _run_clients(clients, seconds, mixed(base)), uploads(side)
            )
            for kind, samples in side.latencies.items():
                tally.latencies[kind] += samples
                tally.errors[kind] += side.errors[kind]
            tally.examples += side.examples
            return tally, elapsed

        env = our_env(url, Path(tmp) / "d", map_basemap="none", public_reads="false")
        with http_server(OUR_CMD, env, "/healthz") as base:
            tally, elapsed = asyncio.run(mixed_with_uploads(base))
            run_name = f"ours, mixed, {clients} clients, {seconds:.0f} s"
            rows += _rows(run_name, tally, elapsed)
            for example in tally.examples:
                print("  error:", example, flush=True)
            reads_ours, ours_s = asyncio.run(
                _run_clients(clients, read_seconds, reads(base, our_tile, our_items, viewer))
            )
        cold = our_env(url, Path(tmp) / "cold", public_reads="false", tile_cache="false")
        with http_server(OUR_CMD, cold, "/healthz") as base:
            reads_cold, cold_s = asyncio.run(
                _run_clients(clients, read_seconds, reads(base, our_tile, our_items, viewer))
            )
        tipg_env = {"DATABASE_URL": url, "TIPG_DB_SCHEMAS": '["bench"]', "TIPG_TILE_BUFFER": "64"}
        tipg_cmd = [str(tipg_python), "-m", "uvicorn", "tipg.main:app", "--port", "{port}"]
        tipg_cmd += ["--log-level", "warning"]
        tipg_tile = "/collections/bench.n50/tiles/WebMercatorQuad/{z}/{x}/{y}?properties=arealtype"
        with http_server(tipg_cmd, tipg_env, "/collections") as base:
            reads_tipg, tipg_s = asyncio.run(
                _run_clients(
                    clients,
                    read_seconds,
                    reads(base, tipg_tile, "/collections/bench.n50/items", {}),
                )
            )
    for tally in (reads_ours, reads_cold, reads_tipg):
        for example in tally.examples:
            print("  error:", example, flush=True)
    peer = {r["requests"]: r for r in _rows("tipg", reads_tipg, tipg_s)}
    for name, tally, elapsed in (
        ("ours, reads (tile cache on)", reads_ours, ours_s),
        ("ours, reads (tile cache off)", reads_cold, cold_s),
    ):
        for row in _rows(name, tally, elapsed):
            other = peer[row["requests"]]
            row["per_s_vs_tipg"] = (
                round(row["per_s"] / other["per_s"], 2) if other["per_s"] else None
            )
            row["p95_vs_tipg"] = (
                round(row["p95_ms"] / other["p95_ms"], 2) if other["p95_ms"] else None
            )
            rows.append(row)
    rows += [{**r, "run": f"tipg, reads, {clients} clients"} for r in peer.values()]
    return rows
