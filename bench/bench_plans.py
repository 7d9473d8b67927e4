"""Plan-level analysis of 1 000 building zones over a 100 000-polygon land-cover layer, with
the full valuation a proposal gets: peat depth classes and depth probes on the mire, a nature
type layer and a carbon-density raster over the area.

Target from the issue: under 5 s on this machine. The peer in the same run is the same
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


def _context_layers(engine: Any, tmp: Path) -> None:
    """Peat depth classes, probes, nature types and a carbon raster over the bench area."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(7)
    cells = shapely.box(
        255_000 + np.repeat(np.arange(0, 3200, 400), 8),
        6_610_000 + np.tile(np.arange(0, 3200, 400), 8),
        255_400 + np.repeat(np.arange(0, 3200, 400), 8),
        6_610_400 + np.tile(np.arange(0, 3200, 400), 8),
    )
    layers = {
        "peat": gpd.GeoDataFrame(
            {"dybdeklasse": rng.choice(["grunn", "djup"], len(cells))}, geometry=cells, crs=25833
        ),
        "nature_types": gpd.GeoDataFrame(
            {
                "naturtype": ["Kalkskog"] * len(cells[::3]),
                "lokalitetskvalitet": ["høy kvalitet"] * len(cells[::3]),
            },
            geometry=[c.buffer(-150) for c in cells[::3]],
            crs=25833,
        ),
    }
    for kind, frame in layers.items():
        frame.to_file(tmp / f"{kind}.gpkg")
        import_file(
            engine,
            tmp / f"{kind}.gpkg",
            ImportOptions(kind=kind, name=kind),
            storage_srid=25833,
        )
    probes = tmp / "probes.csv"
    xy = rng.uniform(0, 3000, (400, 2))
    probes.write_text(
        "WKT,torvdybde_cm\n"
        + "".join(
            f'"POINT ({255_000 + x} {6_610_000 + y})",{rng.integers(40, 300)}\n' for x, y in xy
        ),
        encoding="utf-8",
    )
    import_file(
        engine,
        probes,
        ImportOptions(kind="peat", name="sonderinger", crs="EPSG:25833"),
        storage_srid=25833,
    )
    raster = tmp / "agb.tif"
    data = rng.uniform(0, 80, (300, 300)).astype("float32")
    with rasterio.open(
        raster,
        "w",
        driver="GTiff",
        width=300,
        height=300,
        count=1,
        dtype="float32",
        crs="EPSG:25833",
        transform=from_origin(255_000, 6_613_000, 10, 10),
        nodata=-1,
    ) as dst:
        dst.write(data, 1)
    import_file(
        engine,
        raster,
        ImportOptions(kind="carbon_density", name="agb", pools=("c_above",)),
        storage_srid=25833,
        data_dir=tmp / "data",
    )


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
        _context_layers(engine, Path(tmp))
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
