"""A synthetic country on the real 2024 kommune boundaries, for national runs (bench and
tests): land cover as a grid of squares inside the kommuner, plan zones on a coarser grid,
a degraded baseline and restoration projects near it. Everything is drawn from a seeded
generator, so the same call builds the same country.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Engine

from bench.bench_restoration import baseline_squares, projects_near
from layers.ingest import ImportOptions, import_file

DATA = Path(__file__).resolve().parents[1] / "data" / "kommuner-fylker-2024"
# AR5 classes drawn for land cover: (arealtype, share); forest gets a bonitet.
AR5 = (
    (11, 0.03),
    (12, 0.02),
    (21, 0.06),
    (22, 0.01),
    (23, 0.02),
    (30, 0.45),
    (50, 0.25),
    (60, 0.07),
    (70, 0.01),
    (81, 0.08),
)
BONITET = (11, 12, 13, 14, 15)
# Arealformål drawn for plan zones: building zones and LNFR / green structure.
FORMAL = ((1110, 0.35), (1130, 0.10), (1300, 0.10), (1500, 0.05), (5100, 0.30), (3001, 0.10))


@dataclass(frozen=True)
class Country:
    """The layers made and their sizes."""

    kommuner: int
    land_cover: int
    zones: int
    baseline: int
    projects: int
    plan_layer_id: int
    seconds: dict[str, float]


def kommuner(codes: list[str] | None = None) -> gpd.GeoDataFrame:
    frame = gpd.read_file(DATA / "Kommuner-M.geojson").to_crs(25833)
    if codes:
        frame = frame[frame["kommunenummer"].isin(codes)]
    frame["geometry"] = shapely.make_valid(frame.geometry.values)
    return frame.reset_index(drop=True)


def _grid(areas: gpd.GeoDataFrame, n: int, rng: np.random.Generator) -> tuple[Any, float]:
    """Cell centres of a square grid holding about ``n`` cells inside ``areas``."""
    total = float(areas.geometry.area.sum())
    cell = (total / n) ** 0.5
    x0, y0, x1, y1 = areas.total_bounds
    xs = np.arange(x0 + cell / 2, x1, cell)
    ys = np.arange(y0 + cell / 2, y1, cell)
    gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
    inside = np.zeros(len(gx), dtype=bool)
    for shape in areas.geometry.values:
        shapely.prepare(shape)
        b = shape.bounds
        near = (gx >= b[0]) & (gx <= b[2]) & (gy >= b[1]) & (gy <= b[3])
        idx = np.flatnonzero(near & ~inside)
        inside[idx] = shapely.contains_xy(shape, gx[idx], gy[idx])
    return np.stack([gx[inside], gy[inside]], axis=1), cell


def _draw(rng: np.random.Generator, table: tuple[tuple[int, float], ...], n: int) -> Any:
    values = np.array([v for v, _ in table])
    shares = np.array([s for _, s in table])
    return rng.choice(values, n, p=shares / shares.sum())


def _write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path, driver="GPKG")
    return path


def build_country(
    engine: Engine,
    *,
    codes: list[str] | None = None,
    land_cover: int = 3_000_000,
    zones: int = 100_000,
    baseline: int = 100_000,
    projects: int = 100_000,
    fylker: bool = True,
    seed: int = 19,
) -> Country:
    """Import the country into ``engine``'s database (boundaries, land cover, one national
    plan layer, a degraded baseline and projects)."""
    rng = np.random.default_rng(seed)
    seconds: dict[str, float] = {}
    areas = kommuner(codes)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        features = json.loads(areas.to_crs(4326).to_json())
        (folder / "kommuner.geojson").write_text(json.dumps(features), encoding="utf-8")
        import_file(
            engine,
            folder / "kommuner.geojson",
            ImportOptions(kind="boundaries", name="Kommuner"),
            storage_srid=25833,
        )
        if fylker:
            wanted = {c[:2] for c in areas["kommunenummer"]}
            counties = gpd.read_file(DATA / "Fylker-M.geojson")
            counties = counties[counties["fylkesnummer"].isin(wanted)]
            counties.to_file(folder / "fylker.geojson", driver="GeoJSON")
            import_file(
                engine,
                folder / "fylker.geojson",
                ImportOptions(kind="boundaries", name="Fylker"),
                storage_srid=25833,
            )
        seconds["boundaries"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        centres, cell = _grid(areas, land_cover, rng)
        half = cell / 2
        kinds = _draw(rng, AR5, len(centres))
        cover = gpd.GeoDataFrame(
            {
                "arealtype": kinds,
                "skogbonitet": np.where(kinds == 30, rng.choice(BONITET, len(centres)), None),
            },
            geometry=shapely.box(
                centres[:, 0] - half,
                centres[:, 1] - half,
                centres[:, 0] + half,
                centres[:, 1] + half,
            ),
            crs=25833,
        )
        made = import_file(
            engine,
            _write(cover, folder / "ar5.gpkg"),
            ImportOptions(kind="land_cover", name="AR5 syntetisk"),
            storage_srid=25833,
        )
        n_cover = made.feature_count
        seconds["land_cover"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        centres, spacing = _grid(areas, zones, rng)
        # Zones of 100–600 m on a side (a housing field to a business park), never
        # reaching the next grid point, so that no two overlap.
        side = np.minimum(rng.uniform(100, 600, len(centres)), 0.9 * spacing)
        jitter = (spacing - side) / 2 * rng.uniform(-1, 1, (2, len(centres)))
        cx, cy = centres[:, 0] + jitter[0], centres[:, 1] + jitter[1]
        plan = gpd.GeoDataFrame(
            {
                "KPAREALFORMÅL": _draw(rng, FORMAL, len(centres)),
                "OMRÅDENAVN": [f"S{i}" for i in range(len(centres))],
            },
            geometry=shapely.box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2),
            crs=25833,
        )
        made = import_file(
            engine,
            _write(plan, folder / "kpa.gpkg"),
            ImportOptions(kind="land_use_plan", name="Kommuneplaner"),
            storage_srid=25833,
        )
        plan_layer, n_zones = made.layer_id, made.feature_count
        seconds["plans"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        path = baseline_squares(baseline, areas, folder / "baseline.gpkg")
        base = import_file(
            engine,
            path,
            ImportOptions(kind="degraded_areas", name="Degradert"),
            storage_srid=25833,
        )
        with engine.begin() as conn:
            projects_near(conn, base.version_id, projects)
        seconds["restoration"] = time.perf_counter() - t0
    return Country(len(areas), n_cover, n_zones, base.feature_count, projects, plan_layer, seconds)
