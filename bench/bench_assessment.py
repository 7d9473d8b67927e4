"""Assessment latency for a 10 ha proposal over land-cover layers of growing size,
with a peat layer (mire polygons with depth classes) and nature types overlaid too.

The floor, measured in the same run on the same database, is the bare PostGIS overlay query
(intersection areas grouped by class) that the assessment is built around; the ratio says
what everything else (footprint repair, peat split, nature-type overlaps, factors, storing
the result) costs on top.

Set ``BENCH_ASSESS_SIZES`` (default ``10000,100000,1000000``) to change the layer sizes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import text

from analyses.assessment import ProposalRequest, assess
from bench.bench_ingest import synthetic_land_cover
from bench.common import throwaway_postgis, time_calls
from geoservice.database import create_db_engine
from geoservice.settings import Settings
from layers.ingest import ImportOptions, import_file

N = 50


def _footprints(n: int, side: int) -> list[dict[str, Any]]:
    """``n`` 10 ha squares (316 m) spread over the synthetic grid."""
    rng = np.random.default_rng(7)
    extent = side * 10.0 - 400
    out = []
    for x, y in zip(rng.uniform(0, extent, n), rng.uniform(0, extent, n), strict=True):
        x0, y0 = 255_000 + x, 6_610_000 + y
        ring = [[x0, y0], [x0 + 316.2, y0], [x0 + 316.2, y0 + 316.2], [x0, y0 + 316.2], [x0, y0]]
        out.append({"type": "Polygon", "coordinates": [ring]})
    return out


def _overlay_layers(engine: Any, tmp: Path, side: int) -> None:
    """Peat (mire polygons with depth classes) and nature types over the same ground."""
    rng = np.random.default_rng(5)
    extent = side * 10.0

    def squares(count: int, low: float, high: float) -> Any:
        x = 255_000 + rng.uniform(0, extent, count)
        y = 6_610_000 + rng.uniform(0, extent, count)
        size = rng.uniform(low, high, count)
        return shapely.box(x, y, x + size, y + size)

    peat_count = int(20 * (extent / 1000) ** 2)  # 20 mires per km²
    peat = gpd.GeoDataFrame(
        {"dybdeklasse": rng.choice(["grunn", "djup"], peat_count)},
        geometry=squares(peat_count, 50, 150),
        crs=25833,
    )
    peat.to_file(tmp / "peat.gpkg")
    import_file(
        engine, tmp / "peat.gpkg", ImportOptions(kind="peat", name="myr"), storage_srid=25833
    )
    nature_count = int(50 * (extent / 1000) ** 2)  # 50 localities per km²
    nature = gpd.GeoDataFrame(
        {"ID": [f"NIN{i}" for i in range(nature_count)]},
        geometry=squares(nature_count, 20, 60),
        crs=25833,
    )
    nature.to_file(tmp / "nature.gpkg")
    import_file(
        engine,
        tmp / "nature.gpkg",
        ImportOptions(kind="nature_types", name="nin"),
        storage_srid=25833,
    )


def run() -> list[dict[str, Any]]:
    """Assess N random 10 ha sites per layer size; the overlay query alone as the floor."""
    sizes = [
        int(s) for s in os.environ.get("BENCH_ASSESS_SIZES", "10000,100000,1000000").split(",")
    ]
    rows: list[dict[str, Any]] = []
    with throwaway_postgis() as url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=url, migrate_on_start=False)
        engine = create_db_engine(url, settings)
        _overlay_layers(engine, Path(tmp), max(int(np.ceil(np.sqrt(n))) for n in sizes))
        for n in sizes:
            path = synthetic_land_cover(n, Path(tmp) / f"lc_{n}.gpkg")
            with engine.begin() as conn:  # one land-cover layer at a time
                conn.execute(
                    text(
                        "UPDATE geoservice.layer SET active_version_id = NULL "
                        "WHERE kind = 'land_cover'"
                    )
                )
            result = import_file(
                engine, path, ImportOptions(kind="land_cover", name=f"lc {n}"), storage_srid=25833
            )
            path.unlink()
            side = int(np.ceil(np.sqrt(n)))
            sites = iter(_footprints(N * 2 + 40, side))

            def one(sites: Any = sites) -> None:
                assess(
                    engine,
                    ProposalRequest(footprint=next(sites), arealformal=1110, crs="EPSG:25833"),
                    storage_srid=25833,
                )

            full = time_calls(one, N, warmup=5)
            floor_sites = iter(_footprints(N * 2 + 40, side))

            def overlay(
                floor_sites: Any = floor_sites, version_id: int = result.version_id
            ) -> None:
                with engine.connect() as conn:
                    conn.execute(
                        text(
                            "WITH fp AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(:g), 25833) AS g) "
                            "SELECT f.attrs->>'arealtype', sum(ST_Area(ST_Intersection(f.geom, "
                            "fp.g))) FROM geoservice.feature f, fp WHERE f.version_id = :v "
                            "AND ST_Intersects(f.geom, fp.g) GROUP BY 1"
                        ),
                        {"g": json.dumps(next(floor_sites)), "v": version_id},
                    ).all()

            floor = time_calls(overlay, N, warmup=5)
            rows += [
                {
                    "benchmark": "assessment",
                    "subject": f"POST-equivalent assess, {n} polygons",
                    **full,
                },
                {
                    "benchmark": "assessment",
                    "subject": f"floor: overlay query, {n} polygons",
                    **floor,
                },
                {
                    "benchmark": "assessment",
                    "subject": f"ratio assess/overlay p95, {n}",
                    "ratio": round(full["p95_ms"] / floor["p95_ms"], 2),
                },
            ]
        engine.dispose()
    return rows
