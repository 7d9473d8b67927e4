"""National restoration progress: 100 000 projects against a 1 000 000-polygon degraded
baseline spread over all 357 kommuner (target < 10 s), with the naive union-then-intersect
query measured in the same run on the same data as the comparison.

The baseline is 40 m squares on a 50 m grid at random places inside the 2024 kommuner; each
project is a 60 m square near a random baseline square (so projects overlap each other, the
baseline and unbaselined land), initiated on a random date 2016–2025.

Set ``BENCH_RESTORATION_BASELINE`` / ``BENCH_RESTORATION_PROJECTS`` to change the sizes and
``BENCH_NAIVE_TIMEOUT_S`` (default 600) for how long the naive query may run,
``BENCH_TIMESERIES_YEARS`` (default 3) for the years of the time series compared.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import text

from analyses.restoration import progress, shares_by_region_over, timeseries
from bench.common import throwaway_postgis
from geoservice.database import create_db_engine
from geoservice.settings import Settings
from layers.ingest import ImportOptions, import_file

DATA = Path(__file__).resolve().parents[1] / "data" / "kommuner-fylker-2024"
ECOSYSTEMS = np.array(["wetland", "forest", "freshwater", "semi_natural"])
AS_OF = date(2026, 1, 1)


def baseline_squares(n: int, kommuner: gpd.GeoDataFrame, path: Path) -> Path:
    """``n`` disjoint 40 m squares inside the kommuner, as a GeoPackage."""
    land = shapely.union_all(shapely.make_valid(kommuner.geometry.values))
    shapely.prepare(land)
    x0, y0, x1, y1 = land.bounds
    rng = np.random.default_rng(11)
    cells: np.ndarray = np.empty((0, 2), dtype=np.int64)
    while len(cells) < n:
        x = rng.uniform(x0, x1, 4 * n)
        y = rng.uniform(y0, y1, 4 * n)
        inside = shapely.contains_xy(land, x, y)
        found = np.stack([x[inside] // 50, y[inside] // 50], axis=1).astype(np.int64)
        cells = np.unique(np.concatenate([cells, found]), axis=0)
    cells = cells[rng.permutation(len(cells))[:n]]
    gx, gy = cells[:, 0] * 50.0, cells[:, 1] * 50.0
    frame = gpd.GeoDataFrame(
        {"okosystem": rng.choice(ECOSYSTEMS, n), "basisaar": 2015},
        geometry=shapely.box(gx, gy, gx + 40, gy + 40),
        crs=25833,
    )
    frame.to_file(path, driver="GPKG")
    return path


def projects_near(conn: Any, version_id: int, n: int) -> None:
    """``n`` projects near random baseline squares, written straight into the registry."""
    conn.execute(text("SELECT setseed(0.3)"))
    conn.execute(
        text(
            """
            WITH picked AS (
                SELECT row_number() OVER () AS id, geom, attrs->>'ecosystem_type' AS eco
                  FROM (SELECT geom, attrs FROM geoservice.feature WHERE version_id = :v
                         ORDER BY random() LIMIT :n) t),
            made AS (
                INSERT INTO geoservice.restoration_project (id)
                SELECT id FROM picked RETURNING id)
            INSERT INTO geoservice.restoration_project_history
                (project_id, version, recorded_by, change, ecosystem_type, data, geom)
            SELECT p.id, 1, 'bench', 'create', p.eco,
                   jsonb_build_object(
                       'name', 'bench ' || p.id, 'ecosystem_type', p.eco,
                       'status_history', jsonb_build_array(jsonb_build_object(
                           'status', 'initiated',
                           'date', (date '2016-01-01' + (random() * 3650)::int)::text))),
                   ST_Translate(ST_Expand(p.geom, 10), random() * 60 - 30, random() * 60 - 30)
              FROM picked p JOIN made m ON m.id = p.id
            """
        ),
        {"v": version_id, "n": n},
    )
    conn.execute(text("ANALYZE geoservice.restoration_project_history"))


_NAIVE = """
WITH base AS (SELECT ST_Union(geom) AS g FROM geoservice.feature WHERE version_id = :v),
restored AS (
    SELECT ST_Union(h.geom) AS g FROM geoservice.restoration_project_history h
     WHERE (h.data->'status_history'->0->>'date')::date <= :as_of)
SELECT ST_Area(base.g) / 10000, ST_Area(ST_Intersection(restored.g, base.g)) / 10000
  FROM base, restored
"""


def run() -> list[dict[str, Any]]:
    """Ours (local units) for the country and per kommune; the naive national query."""
    n_base = int(os.environ.get("BENCH_RESTORATION_BASELINE", "1000000"))
    n_proj = int(os.environ.get("BENCH_RESTORATION_PROJECTS", "100000"))
    naive_timeout = int(os.environ.get("BENCH_NAIVE_TIMEOUT_S", "600"))
    rows: list[dict[str, Any]] = []
    with throwaway_postgis() as url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=url, migrate_on_start=False, db_statement_timeout_ms=0)
        engine = create_db_engine(url, settings)
        kommuner_file = DATA / "Kommuner-M.geojson"
        import_file(
            engine,
            kommuner_file,
            ImportOptions(kind="boundaries", name="kommuner"),
            storage_srid=25833,
        )
        kommuner = gpd.read_file(kommuner_file).to_crs(25833)
        path = baseline_squares(n_base, kommuner, Path(tmp) / "baseline.gpkg")
        base = import_file(
            engine, path, ImportOptions(kind="degraded_areas", name="baseline"), storage_srid=25833
        )
        with engine.begin() as conn:
            projects_near(conn, base.version_id, n_proj)
        case = f"{n_proj} projects vs {n_base} baseline polygons, 357 kommuner"

        t0 = time.perf_counter()
        national = progress(engine, region="NO", as_of=AS_OF)
        ours_national = time.perf_counter() - t0
        t0 = time.perf_counter()
        per_kommune = shares_by_region_over(engine, level="kommune", dates=[AS_OF])
        ours_kommuner = time.perf_counter() - t0
        regions = per_kommune[AS_OF.isoformat()]["features"]

        # The yearly series over the last years, all ecosystems: ours measures each
        # ecosystem once for all year ends; the peer asks progress() for every year and
        # ecosystem, as the series used to. The numbers must agree.
        years = int(os.environ.get("BENCH_TIMESERIES_YEARS", "3"))
        t0 = time.perf_counter()
        series = timeseries(engine, start_year=AS_OF.year - years + 1, end=AS_OF)
        ours_series = time.perf_counter() - t0
        t0 = time.perf_counter()
        for row in series:
            eco = None if row["ecosystem"] == "all" else row["ecosystem"]
            day = progress(engine, ecosystem=eco, as_of=date.fromisoformat(row["as_of"]))
            if day["under_restoration_ha"] != row["under_restoration_ha"]:
                raise AssertionError(f"timeseries differs from progress: {row} vs {day}")
        per_call_series = time.perf_counter() - t0

        naive_s: float | None = None
        naive: Any = None
        with engine.connect() as conn:
            conn.execute(text(f"SET statement_timeout = '{naive_timeout}s'"))
            t0 = time.perf_counter()
            try:
                naive = conn.execute(text(_NAIVE), {"v": base.version_id, "as_of": AS_OF}).one()
                naive_s = time.perf_counter() - t0
            except Exception as exc:  # statement timeout: report it, do not fail the bench
                print(f"  naive query stopped: {type(exc).__name__}", flush=True)
        engine.dispose()
    shown = f"{naive_s:.1f}" if naive_s is not None else f"> {naive_timeout}"
    rows.append(
        {
            "bench": "restoration",
            "case": case,
            "ours_national_s": round(ours_national, 2),
            "ours_357_kommuner_s": round(ours_kommuner, 2),
            "naive_national_s": shown,
            "ratio_naive_vs_ours": round(naive_s / ours_national, 1) if naive_s else "n/a",
            "baseline_ha": round(national["baseline_degraded_ha"], 1),
            "restored_ha": round(national["under_restoration_ha"], 1),
            "naive_restored_ha": round(float(naive[1]), 1) if naive is not None else "n/a",
            "kommuner_with_baseline": len(regions),
        }
    )
    rows.append(
        {
            "bench": "restoration",
            "case": f"timeseries, {years} year ends x (all + {len(ECOSYSTEMS)} ecosystems)",
            "ours_timeseries_s": round(ours_series, 2),
            "progress_per_year_and_ecosystem_s": round(per_call_series, 2),
            "ratio": round(per_call_series / ours_series, 1),
            "rows_equal": True,
        }
    )
    return rows
