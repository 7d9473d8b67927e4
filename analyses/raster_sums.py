"""Exact area-weighted sums of a density raster (t C/ha) over a polygon.

Each pixel counts with the share of its area inside the polygon (coverage fraction), computed
exactly with GEOS: pixels wholly inside count fully, pixels on the boundary by their
intersection area. Only the polygon's window is read, so memory follows the site, not the
raster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window, from_bounds


@dataclass(frozen=True)
class CoverageSum:
    """Sum of value × covered hectares, and how much of the polygon valid pixels cover."""

    total: float  # value unit × ha (t C for a t C/ha raster)
    covered_m2: float
    polygon_m2: float

    @property
    def covered_share(self) -> float:
        """Share of the polygon under valid (not nodata) pixels."""
        return self.covered_m2 / self.polygon_m2 if self.polygon_m2 else 0.0


def coverage_sum(path: str, polygon_wkb: bytes) -> CoverageSum:
    """Σ value × (pixel area inside the polygon) / 10 000 m² per ha."""
    return coverage_sums(path, [polygon_wkb])[0]


def coverage_sums(path: str, polygon_wkbs: list[bytes]) -> list[CoverageSum]:
    """:func:`coverage_sum` for many polygons, opening the raster once."""
    with rasterio.open(path) as src:
        return [_coverage(src, shapely.from_wkb(wkb)) for wkb in polygon_wkbs]


def _coverage(src: Any, geom: Any) -> CoverageSum:
    """Read only the polygon's window of ``src``; clip only the pixels its boundary crosses."""
    area = float(geom.area)
    full = Window(0, 0, src.width, src.height)
    exact = from_bounds(*geom.bounds, transform=src.transform)
    # Every pixel the bounds touch: floor the start, ceil the end (not the length).
    col0, row0 = math.floor(exact.col_off), math.floor(exact.row_off)
    col1 = math.ceil(exact.col_off + exact.width)
    row1 = math.ceil(exact.row_off + exact.height)
    try:
        window = Window(col0, row0, col1 - col0, row1 - row0).intersection(full)
    except rasterio.errors.WindowError:  # no overlap at all
        return CoverageSum(0.0, 0.0, area)
    data = src.read(1, window=window, masked=True)
    transform = src.window_transform(window)
    rows, cols = data.shape
    if rows == 0 or cols == 0:
        return CoverageSum(0.0, 0.0, area)
    values = np.ma.filled(data.astype("float64"), np.nan)
    valid = np.isfinite(values)
    # Pixels the polygon's boundary passes through need exact clipping; every other pixel is
    # wholly inside or wholly outside, which its centre tells.
    edge = rasterize(
        [(geom.boundary, 1)],
        out_shape=(rows, cols),
        transform=transform,
        all_touched=True,
        fill=0,
        dtype="uint8",
    ).astype(bool)
    col_idx, row_idx = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    cx = transform.c + transform.a * col_idx
    cy = transform.f + transform.e * row_idx
    inside = ~edge & shapely.contains_xy(geom, cx, cy)
    pixel_m2 = abs(transform.a * transform.e)
    overlap = np.where(inside, pixel_m2, 0.0)
    er, ec = np.nonzero(edge & valid)
    if er.size:
        xa = transform.c + transform.a * ec
        ya = transform.f + transform.e * er
        xb, yb = xa + transform.a, ya + transform.e
        # shapely.clip_by_rect only takes scalar bounds; its ufunc in shapely.lib broadcasts.
        clipped = shapely.lib.clip_by_rect(
            geom, np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb)
        )
        overlap[er, ec] = shapely.area(clipped)
    overlap[~valid] = 0.0
    values = np.where(valid, values, 0.0)
    return CoverageSum(
        total=float(np.sum(values * overlap) / 10_000),
        covered_m2=float(overlap.sum()),
        polygon_m2=area,
    )
