"""Exact raster sums over polygons: ours against exactextract on the same raster and polygons.

exactextract is a peer, not a dependency: it runs in the oracles venv made by
``../shared/tools/install-oracles.sh`` (``ORACLES_VENV``, default /tmp/oracles-venv); without
it this benchmark reports only our side. Totals must agree within 0.01 %.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin

from analyses.raster_sums import coverage_sums

POLYGONS = 200
ORACLE = Path(os.environ.get("ORACLES_VENV", "/tmp/oracles-venv")) / "bin" / "python"
PEER_SCRIPT = """
import json, sys, time
import geopandas as gpd
from exactextract import exact_extract
polys = gpd.read_file(sys.argv[2])
t0 = time.perf_counter()
out = exact_extract(sys.argv[1], polys, "sum", output="pandas")
print(json.dumps({"seconds": time.perf_counter() - t0, "sums": out["sum"].tolist()}))
"""


def run() -> list[dict[str, Any]]:
    """200 irregular ~10 ha polygons over a 2 000 × 2 000 raster of 10 m pixels."""
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory() as tmp:
        tif = Path(tmp) / "carbon.tif"
        data = rng.uniform(0, 300, (2000, 2000)).astype("float32")
        with rasterio.open(
            tif,
            "w",
            driver="GTiff",
            width=2000,
            height=2000,
            count=1,
            dtype="float32",
            crs="EPSG:25833",
            nodata=-1,
            transform=from_origin(250_000, 6_640_000, 10, 10),
        ) as dst:
            dst.write(data, 1)
        centres = shapely.points(
            rng.uniform(251_000, 269_000, POLYGONS), rng.uniform(6_621_000, 6_639_000, POLYGONS)
        )
        polys = shapely.buffer(centres, rng.uniform(150, 200, POLYGONS), quad_segs=6)
        t0 = time.perf_counter()
        ours = [c.total for c in coverage_sums(str(tif), list(shapely.to_wkb(polys)))]
        ours_s = time.perf_counter() - t0
        rows: list[dict[str, Any]] = [
            {
                "benchmark": "raster_sums",
                "subject": f"geoservice coverage_sum, {POLYGONS} polygons",
                "seconds": round(ours_s, 3),
            }
        ]
        if not ORACLE.exists():
            rows.append(
                {
                    "benchmark": "raster_sums",
                    "subject": "exactextract missing (run ../shared/tools/install-oracles.sh)",
                }
            )
            return rows
        geojson = Path(tmp) / "polys.geojson"
        gpd.GeoDataFrame(geometry=polys, crs=25833).to_file(geojson, driver="GeoJSON")
        proc = subprocess.run(
            [str(ORACLE), "-c", PEER_SCRIPT, str(tif), str(geojson)],
            capture_output=True,
            text=True,
            check=True,
        )
        peer = json.loads(proc.stdout.strip().splitlines()[-1])
        # exactextract's sum weights by pixel fraction; ours by hectares: × 100 m² / 10 000.
        theirs = np.array(peer["sums"]) * 100 / 10_000
        worst = float(np.max(np.abs(np.array(ours) - theirs) / np.abs(theirs)))
        rows += [
            {
                "benchmark": "raster_sums",
                "subject": "peer: exactextract (in-process time)",
                "seconds": round(peer["seconds"], 3),
            },
            {
                "benchmark": "raster_sums",
                "subject": "ratio ours/exactextract time",
                "ratio": round(ours_s / peer["seconds"], 2),
            },
            {
                "benchmark": "raster_sums",
                "subject": "largest relative difference of totals",
                "ratio": f"{worst:.2e}",
            },
        ]
        return rows
