"""Exact area-weighted sums of a density raster (t C/ha) over a polygon.

Each pixel counts with the share of its area inside the polygon (coverage fraction), computed
exactly with GEOS: pixels wholly inside count fully, pixels on the boundary by their
intersection area. Only the polygon's window is read, so memory follows the site, not the
raster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rasterio
import shapely
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
    geom = shapely.from_wkb(polygon_wkb)
    area = float(geom.area)
    with rasterio.open(path) as src:
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
    col_idx, row_idx = np.meshgrid(np.arange(cols), np.arange(rows))
    x0 = transform.c + transform.a * col_idx
    y0 = transform.f + transform.e * row_idx
    x1, y1 = x0 + transform.a, y0 + transform.e
    values = np.ma.filled(data.astype("float64"), np.nan)
    valid = np.isfinite(values)
    boxes = shapely.box(
        np.minimum(x0, x1)[valid],
        np.minimum(y0, y1)[valid],
        np.maximum(x0, x1)[valid],
        np.maximum(y0, y1)[valid],
    )
    shapely.prepare(geom)
    inside = shapely.contains_properly(geom, boxes)
    pixel_m2 = abs(transform.a * transform.e)
    overlap = np.where(inside, pixel_m2, 0.0)
    edge = ~inside & shapely.intersects(geom, boxes)
    if edge.any():
        # Clipping the polygon by each pixel rectangle is exact and much cheaper than a
        # general intersection.
        overlap[edge] = [
            shapely.clip_by_rect(geom, *b).area for b in shapely.bounds(boxes[edge]).tolist()
        ]
    return CoverageSum(
        total=float(np.sum(values[valid] * overlap) / 10_000),
        covered_m2=float(overlap.sum()),
        polygon_m2=area,
    )
