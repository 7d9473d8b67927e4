"""Plan-level analysis of 1 000 building zones over a 100 000-polygon land-cover layer.

Target from the issue: under 30 s on this machine. The peer in the same run is the same
analysis done one zone at a time through the single-proposal assessment (as a client calling
POST /api/proposals per zone would), on the first 100 zones, scaled to 1 000.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from analyses.assessment import ProposalRequest, assess
from analyses.plans import analyse_plan
from bench.bench_ingest import synthetic_land_cover
from bench.common import throwaway_postgis
from geoservice.database import create_db_engine
from geoservice.settings import Settings
from layers.ingest import ImportOptions, import_file

ZONES = 1000
PEER_SAMPLE = 100


def run() -> list[dict[str, Any]]:
    """Time the set-based plan analysis against zone-by-zone assessment."""
    with throwaway_postgis() as url, tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(url, Settings(database_url=url, migrate_on_start=False))
        import_file(
            engine,
            synthetic_land_cover(100_000, Path(tmp) / "lc.gpkg"),
            ImportOptions(kind="land_cover", name="lc"),
            storage_srid=25833,
        )
        rng = np.random.default_rng(3)
        x = 255_000 + rng.uniform(0, 2800, ZONES)
        y = 6_610_000 + rng.uniform(0, 2800, ZONES)
        sizes = rng.uniform(20, 120, ZONES)
        zones = gpd.GeoDataFrame(
            {"KPAREALFORMÅL": rng.choice([1110, 1300, 1120, 2010], ZONES)},
            geometry=shapely.box(x, y, x + sizes, y + sizes),
            crs=25833,
        )
        zones.to_file(Path(tmp) / "plan.gpkg")
        plan = import_file(
            engine,
            Path(tmp) / "plan.gpkg",
            ImportOptions(kind="land_use_plan", name="plan"),
            storage_srid=25833,
        )
        t0 = time.perf_counter()
        result = analyse_plan(engine, plan.layer_id)
        ours = time.perf_counter() - t0
        assert len(result["zones"]) == ZONES
        t0 = time.perf_counter()
        for geom, code in zip(zones.geometry[:PEER_SAMPLE], zones["KPAREALFORMÅL"], strict=False):
            assess(
                engine,
                ProposalRequest(
                    footprint=shapely.geometry.mapping(geom),
                    arealformal=int(code),
                    crs="EPSG:25833",
                ),
                storage_srid=25833,
            )
        peer = (time.perf_counter() - t0) * ZONES / PEER_SAMPLE
        engine.dispose()
    return [
        {
            "benchmark": "plans",
            "subject": f"plan analysis, {ZONES} zones / 100 000 polygons",
            "seconds": round(ours, 2),
        },
        {
            "benchmark": "plans",
            "subject": "peer: one assessment per zone (extrapolated)",
            "seconds": round(peer, 2),
        },
        {"benchmark": "plans", "subject": "ratio plan/per-zone", "ratio": round(ours / peer, 3)},
    ]
