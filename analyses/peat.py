"""Peat carbon density derived from NINA's lab-analysed Norwegian samples [nina-gran-2023].

The value is computed from the data file, not typed in: central = mean, low/high = lower and
upper quartile of ``C density (kg/m3)``. One metre of peat over one hectare is 10 000 m³, so
t C/ha per metre = kg C/m³ × 10.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import numpy as np
import shapely

NINA_FILE = files("analyses") / "data" / "peat-carbon-nina" / "gran_dataset_utf8.csv"
COLUMN = "C density (kg/m3)"
ANALYSED = "% SOM"  # empty where the lab analysis is missing


@dataclass(frozen=True)
class PeatDensity:
    """Carbon per volume of peat, with its range and where it came from."""

    central_kg_m3: float
    low_kg_m3: float
    high_kg_m3: float
    samples: int
    source: str

    def t_c_per_ha_per_m(self, which: str = "central") -> float:
        """Stock of one metre of peat over one hectare."""
        return {"central": self.central_kg_m3, "low": self.low_kg_m3, "high": self.high_kg_m3}[
            which
        ] * 10


@cache
def nina_density(path: Traversable = NINA_FILE) -> PeatDensity:
    """Mean and quartiles of the carbon densities of the lab-analysed samples.

    Samples without an organic-matter analysis (``% SOM`` empty: Høstadmyra and the Kinn
    sites) carry a ``C density`` of 0 that means "not analysed", not "no carbon": they are
    left out (counting them made every measured mire a quarter too low).
    """
    values: list[float] = []
    with path.open("r", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            if not (row.get(ANALYSED) or "").strip():
                continue
            raw = (row.get(COLUMN) or "").strip().replace(",", ".")
            try:
                values.append(float(raw))
            except ValueError:
                continue
    low, _, high = statistics.quantiles(values, n=4, method="exclusive")
    return PeatDensity(
        central_kg_m3=statistics.fmean(values),
        low_kg_m3=low,
        high_kg_m3=high,
        samples=len(values),
        source=f"NINA GRAN dataset [nina-gran-2023]: mean and quartiles of {len(values)} "
        "lab-analysed samples",
    )


# Peat depth each depth class spans, m: shallow and deep as AR5 and [asplanviak-svv-2015] define
# them; the 3 m bound of deep peat is [project-estimates] (deeper mires exist, most are not).
DEPTH_SPAN_M: dict[str, tuple[float, float]] = {
    "grunn": (0.3, 1.0),
    "djup": (1.0, 3.0),
    "ukjent": (0.3, 3.0),
}


def depth_class_range(depth_class: str, central_t_c_ha: float) -> tuple[float, float]:
    """Low and high multipliers of a depth class's peat stock: the class's depth span times
    the lower and upper density quartile, over the class's central stock."""
    shallow, deep = DEPTH_SPAN_M[depth_class]
    density = nina_density()
    return (
        shallow * density.t_c_per_ha_per_m("low") / central_t_c_ha,
        deep * density.t_c_per_ha_per_m("high") / central_t_c_ha,
    )


@dataclass(frozen=True)
class MireDepth:
    """Mean peat depth over the mire part of a site, and how it was found."""

    mean_m: float
    method: str  # "depth raster" or "depth probes (IDW)"
    source: str  # layer name and version
    covered_share: float


IDW_POWER = 2
PROBE_SEARCH_M = 200.0
MIN_PROBES = 3


def idw_mean_depth(polygon: Any, probes: np.ndarray, cell: float | None = None) -> float:
    """Mean of an inverse-distance-weighted depth surface over ``polygon``.

    ``probes`` is an (n, 3) array of x, y, depth in metres. Cell centres inside the polygon
    sample the surface; a probe exactly on a centre gives its own depth.
    """
    x0, y0, x1, y1 = polygon.bounds
    if cell is None:
        cell = max(2.0, math.sqrt(polygon.area / 40_000))
    xs = np.arange(x0 + cell / 2, x1, cell)
    ys = np.arange(y0 + cell / 2, y1, cell)
    gx, gy = np.meshgrid(xs, ys)
    inside = shapely.contains_xy(polygon, gx, gy)
    px, py = gx[inside], gy[inside]
    if px.size == 0:  # a sliver thinner than a cell: sample its representative point
        point = polygon.representative_point()
        px, py = np.array([point.x]), np.array([point.y])
    total = 0.0
    for start in range(0, px.size, 20_000):
        dx = px[start : start + 20_000, None] - probes[None, :, 0]
        dy = py[start : start + 20_000, None] - probes[None, :, 1]
        dist = np.hypot(dx, dy)
        exact = dist < 1e-9
        weights = 1.0 / np.maximum(dist, 1e-9) ** IDW_POWER
        values = (weights * probes[None, :, 2]).sum(axis=1) / weights.sum(axis=1)
        hit = exact.any(axis=1)
        if hit.any():
            values[hit] = probes[np.argmax(exact[hit], axis=1), 2]
        total += float(values.sum())
    return float(total / px.size)


def mire_depths(
    conn: Any, mires: dict[int, bytes], srid: int, active: dict[str, list[Any]]
) -> dict[int, MireDepth]:
    """Mean depth of each site's mire (WKB by key) from an active peat-depth raster that
    covers at least half of it, else from peat probes near it (IDW); sites with neither are
    left out. One query for the rasters and one for the probes, whatever the number of sites;
    ``active`` is :func:`layers.catalog.active_by_kind`.
    """
    from collections import defaultdict

    from sqlalchemy import text

    from analyses.raster_sums import coverage_sums
    from layers.catalog import covering_versions

    mires = {k: w for k, w in mires.items() if shapely.from_wkb(w).area > 0}
    found: dict[int, MireDepth] = {}
    if active.get("peat_depth"):
        chosen = covering_versions(conn, "peat_depth", mires, srid)
        by_path: dict[str, list[int]] = defaultdict(list)
        for key, row in chosen.items():
            if row.storage_path is not None:
                by_path[row.storage_path].append(key)
        for path, keys in by_path.items():
            for key, sums in zip(keys, coverage_sums(path, [mires[k] for k in keys]), strict=True):
                if sums.covered_share >= 0.5:
                    found[key] = MireDepth(
                        mean_m=sums.total * 10_000 / sums.covered_m2,
                        method="depth raster",
                        source=f"{chosen[key].name} version {chosen[key].version}",
                        covered_share=sums.covered_share,
                    )
    peat_layers = {v.version_id: v for v in active.get("peat", [])}
    rest = {k: w for k, w in mires.items() if k not in found}
    if not peat_layers or not rest:
        return found
    rows = conn.execute(
        text(
            """
            WITH s AS MATERIALIZED (
                SELECT k, ST_GeomFromWKB(w, :srid) AS g
                  FROM unnest(CAST(:keys AS bigint[]), CAST(:wkbs AS bytea[])) AS t(k, w))
            SELECT s.k, p.version_id, ST_X(d.geom) AS x, ST_Y(d.geom) AS y,
                   (p.attrs->>'depth_cm')::float / 100 AS depth_m
              FROM s
              JOIN geoservice.feature p
                ON p.version_id = ANY(:versions) AND p.attrs ? 'depth_cm'
               AND ST_DWithin(p.geom, s.g, :r)
             CROSS JOIN LATERAL ST_Dump(p.geom) AS d
             ORDER BY s.k, p.version_id, p.fid, d.path
            """
        ),
        {
            "srid": srid,
            "keys": list(rest),
            "wkbs": list(rest.values()),
            "r": PROBE_SEARCH_M,
            "versions": list(peat_layers),
        },
    ).all()
    probes: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        probes[int(r.k)].append(r)
    for key, near in probes.items():
        if len(near) < MIN_PROBES:
            continue
        points = np.array([(p.x, p.y, p.depth_m) for p in near], dtype="float64")
        layers = sorted(
            {
                f"{peat_layers[p.version_id].name} version {peat_layers[p.version_id].version}"
                for p in near
            }
        )
        found[key] = MireDepth(
            mean_m=idw_mean_depth(shapely.from_wkb(rest[key]), points),
            method=f"depth probes (IDW, power {IDW_POWER}, {len(near)} probes within "
            f"{PROBE_SEARCH_M:g} m)",
            source=", ".join(layers),
            covered_share=1.0,
        )
    return found
