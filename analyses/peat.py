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


def mire_depth(conn: Any, mire_wkb: bytes, srid: int) -> MireDepth | None:
    """Depth from an active peat-depth raster, else from peat probes; None without either."""
    from sqlalchemy import text

    from analyses.raster_sums import coverage_sum

    mire = shapely.from_wkb(mire_wkb)
    if mire.is_empty or mire.area <= 0:
        return None
    from layers.catalog import active_versions, covering_version

    raster = covering_version(conn, "peat_depth", mire_wkb, srid)
    if raster is not None and raster.storage_path is not None:
        sums = coverage_sum(raster.storage_path, mire_wkb)
        if sums.covered_share >= 0.5:
            return MireDepth(
                mean_m=sums.total * 10_000 / sums.covered_m2,
                method="depth raster",
                source=f"{raster.name} version {raster.version}",
                covered_share=sums.covered_share,
            )
    peat_layers = {v.version_id: v for v in active_versions(conn, "peat")}
    if not peat_layers:
        return None
    probes = conn.execute(
        text(
            """
            SELECT p.version_id, ST_X(g.geom) AS x, ST_Y(g.geom) AS y,
                   (p.attrs->>'depth_cm')::float / 100 AS depth_m
              FROM geoservice.feature p
             CROSS JOIN LATERAL ST_Dump(p.geom) AS g
             WHERE p.version_id = ANY(:versions) AND p.attrs ? 'depth_cm'
               AND ST_DWithin(p.geom, ST_GeomFromWKB(:wkb, :srid), :r)
            """
        ),
        {"wkb": mire_wkb, "srid": srid, "r": PROBE_SEARCH_M, "versions": list(peat_layers)},
    ).all()
    if len(probes) < MIN_PROBES:
        return None
    points = np.array([(p.x, p.y, p.depth_m) for p in probes], dtype="float64")
    layers = sorted(
        {
            f"{peat_layers[p.version_id].name} version {peat_layers[p.version_id].version}"
            for p in probes
        }
    )
    return MireDepth(
        mean_m=idw_mean_depth(mire, points),
        method=f"depth probes (IDW, power {IDW_POWER}, {len(probes)} probes within "
        f"{PROBE_SEARCH_M:g} m)",
        source=", ".join(layers),
        covered_share=1.0,
    )
