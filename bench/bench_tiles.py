"""Vector tile throughput and latency for a 1 000 000-polygon layer at zooms 8, 12 and 15,
against tipg (PyPI, its own venv) serving the same rows from the same database in one run.

Both servers run as one uvicorn process; 4 client threads request the tiles covering the data
(each zoom for at most ``BENCH_TILE_SECONDS`` or 200 tiles). Ours is measured cold (tile
cache off: PostGIS renders every tile, as tipg does) and warm (cache on, second pass). tipg
is given the same buffer (64) and no per-tile feature cap, so both cut the same tiles, and
the same properties as columns of its table (``arealtype``, ``skogbonitet`` and their code
names, which ours carry): the ratios are against that. tipg serving ``arealtype`` alone (less
to encode, 30 % smaller tiles) is measured too and reported beside it.

Then a CQL2-filtered items request (``arealtype = 60``, 100 per page, with numberMatched)
on the same layer, ours (whose import indexed ``arealtype`` as the filters write it) against
tipg (its table with a btree on ``arealtype``), 4 clients.

Set ``BENCH_TILE_SIZE`` (default 1000000) for the layer size.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from pyproj import Transformer

from bench.bench_ingest import synthetic_land_cover
from bench.common import peer_table, throwaway_postgis
from bench.servers import OUR_CMD, http_server, our_env, peer_python
from geoservice.database import create_db_engine
from geoservice.settings import Settings
from layers.ingest import ImportOptions, import_file
from layers.tiles import code_labels

ZOOMS = (8, 12, 15)
THREADS = 4
MAX_TILES = 200


# A CQL2 filter on the class both servers index (ours at import, bench.lc by the bench).
CQL_FILTER = "arealtype = 60"
CQL = "filter=arealtype%20%3D%2060&filter-lang=cql2-text&limit=100"
SAME_PROPERTIES = ("arealtype", "skogbonitet", "arealtype_navn", "skogbonitet_navn")


def _same_properties(conn: Any, table: str, version_id: int) -> None:
    """Rebuild the peer's table with the properties our tiles carry: the second coded
    attribute and both code names, as plain columns (rebuilt, not updated, so that the
    peer reads no dead rows)."""
    from sqlalchemy import text

    labels = code_labels("land_cover")
    conn.execute(
        text(
            f"CREATE TABLE bench.{table}_same AS SELECT b.fid, b.arealtype, "
            "(f.attrs->>'skogbonitet')::int AS skogbonitet, "
            "CAST(:a AS jsonb) ->> (f.attrs->>'arealtype') AS arealtype_navn, "
            "CAST(:s AS jsonb) ->> (f.attrs->>'skogbonitet') AS skogbonitet_navn, b.geom "
            f"FROM bench.{table} b JOIN geoservice.feature f "
            "ON f.version_id = :v AND f.fid = b.fid ORDER BY b.fid"
        ),
        {
            "a": json.dumps(labels["arealtype"]),
            "s": json.dumps(labels["skogbonitet"]),
            "v": version_id,
        },
    )
    conn.execute(text(f"DROP TABLE bench.{table}"))
    conn.execute(text(f"ALTER TABLE bench.{table}_same RENAME TO {table}"))
    conn.execute(text(f"ALTER TABLE bench.{table} ADD PRIMARY KEY (fid)"))
    conn.execute(text(f"CREATE INDEX ON bench.{table} USING gist (geom)"))
    conn.execute(text(f"CREATE INDEX ON bench.{table} (arealtype)"))
    conn.execute(text(f"ANALYZE bench.{table}"))


def _tiles(bounds: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    """XYZ tiles covering a lon/lat box."""
    x0, y0, x1, y1 = bounds

    def xy(lon: float, lat: float) -> tuple[int, int]:
        n = 2**z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    (ax, ay), (bx, by) = xy(x0, y1), xy(x1, y0)
    return [(z, x, y) for x in range(ax, bx + 1) for y in range(ay, by + 1)]


def _load(urls: list[str], seconds: float) -> dict[str, Any]:
    """Fetch URLs with THREADS clients until done or out of time; latency and throughput."""
    samples: list[float] = []
    sizes: list[int] = []
    deadline = time.monotonic() + seconds

    def worker(part: list[str]) -> None:
        with httpx.Client(timeout=120) as client:
            for url in part:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                r = client.get(url)
                samples.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                sizes.append(len(r.content))

    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, [urls[i::THREADS] for i in range(THREADS)]))
    total = time.perf_counter() - start
    samples.sort()
    return {
        "tiles": len(samples),
        "tiles_per_s": round(len(samples) / total, 2),
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
        "mean_kb": round(statistics.mean(sizes) / 1024, 1),
    }


def run() -> list[dict[str, Any]]:
    """Cold and warm tiles of ours vs tipg per zoom."""
    size = int(os.environ.get("BENCH_TILE_SIZE", "1000000"))
    seconds = float(os.environ.get("BENCH_TILE_SECONDS", "30"))
    tipg_python = peer_python()
    rows: list[dict[str, Any]] = []
    with throwaway_postgis() as url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=url, migrate_on_start=False)
        engine = create_db_engine(url, settings)
        path = synthetic_land_cover(size, Path(tmp) / "lc.gpkg")
        result = import_file(
            engine, path, ImportOptions(kind="land_cover", name="lc"), storage_srid=25833
        )
        path.unlink()
        with engine.begin() as conn:
            bbox = peer_table(conn, "lc", result.version_id)
            _same_properties(conn, "lc", result.version_id)
        engine.dispose()
        to_wgs = Transformer.from_crs(25833, 4326, always_xy=True)
        lon0, lat0 = to_wgs.transform(bbox[0], bbox[1])
        lon1, lat1 = to_wgs.transform(bbox[2], bbox[3])
        plans = {z: _tiles((lon0, lat0, lon1, lat1), z) for z in ZOOMS}

        def urls(base: str, template: str, z: int) -> list[str]:
            tiles = plans[z]
            picked = [tiles[i % len(tiles)] for i in range(min(MAX_TILES, max(len(tiles), 8)))]
            return [base + template.format(z=t[0], x=t[1], y=t[2]) for t in picked]

        ours_path = f"/tiles/{result.layer_id}/{{z}}/{{x}}/{{y}}.pbf?version=1"
        tipg_tiles = "/collections/bench.lc/tiles/WebMercatorQuad/{z}/{x}/{y}?properties="
        tipg_paths = {
            "tipg": tipg_tiles + ",".join(SAME_PROPERTIES),
            "tipg arealtype only": tipg_tiles + "arealtype",
        }
        measured: dict[tuple[str, int], dict[str, Any]] = {}
        cold_env = our_env(url, Path(tmp) / "cold", tile_cache="false")
        cql: dict[str, dict[str, Any]] = {}
        with http_server(OUR_CMD, cold_env, "/healthz") as base:
            for z in ZOOMS:
                measured[("ours cold", z)] = _load(urls(base, ours_path, z), seconds)
            slug = httpx.get(f"{base}/ogc/collections/{result.layer_id}").json()["id"]
            cql["ours"] = _load([f"{base}/ogc/collections/{slug}/items?{CQL}"] * 200, seconds)
        warm_env = our_env(url, Path(tmp) / "warm", tile_cache="true")
        with http_server(OUR_CMD, warm_env, "/healthz") as base:
            for z in ZOOMS:
                _load(urls(base, ours_path, z), seconds * 4)  # fill the cache
                measured[("ours cached", z)] = _load(urls(base, ours_path, z), seconds)
        tipg_env = {
            "DATABASE_URL": url,
            "TIPG_DB_SCHEMAS": '["bench"]',
            "TIPG_MAX_FEATURES_PER_TILE": str(size * 2),
            "TIPG_TILE_BUFFER": "64",
        }
        tipg_cmd = [
            str(tipg_python),
            "-m",
            "uvicorn",
            "tipg.main:app",
            "--port",
            "{port}",
            "--log-level",
            "warning",
        ]
        with http_server(tipg_cmd, tipg_env, "/collections") as base:
            for z in ZOOMS:
                for who, path in tipg_paths.items():
                    measured[(who, z)] = _load(urls(base, path, z), seconds)
            cql["tipg"] = _load([f"{base}/collections/bench.lc/items?{CQL}"] * 200, seconds)
    for z in ZOOMS:
        peer = measured[("tipg", z)]
        light = measured[("tipg arealtype only", z)]
        for who in ("ours cold", "ours cached", *tipg_paths):
            m = measured[(who, z)]
            rows.append(
                {
                    "bench": "tiles",
                    "case": f"{size} polygons z{z} ({len(plans[z])} tiles cover the data)",
                    "server": who,
                    **m,
                    "throughput_vs_tipg": round(m["tiles_per_s"] / peer["tiles_per_s"], 2),
                    "p95_vs_tipg": round(m["p95_ms"] / peer["p95_ms"], 2),
                    "throughput_vs_tipg_arealtype_only": round(
                        m["tiles_per_s"] / light["tiles_per_s"], 2
                    ),
                    "p95_vs_tipg_arealtype_only": round(m["p95_ms"] / light["p95_ms"], 2),
                }
            )
    for who in ("ours", "tipg"):
        m = cql[who]
        rows.append(
            {
                "bench": "cql2_items",
                "case": f"{size} polygons, filter={CQL_FILTER!r}, limit 100, indexed attribute",
                "server": who,
                "requests": m["tiles"],
                "per_s": m["tiles_per_s"],
                "p50_ms": m["p50_ms"],
                "p95_ms": m["p95_ms"],
                "throughput_vs_tipg": round(m["tiles_per_s"] / cql["tipg"]["tiles_per_s"], 2),
                "p95_vs_tipg": round(m["p95_ms"] / cql["tipg"]["p95_ms"], 2),
            }
        )
    return rows
