"""A static SVG map of footprints over land cover: printable, offline, no scripts.

Geometry comes as SVG path data from PostGIS (``ST_AsSVG``, y already negated); every label is
HTML-escaped.
"""

from __future__ import annotations

import math
from html import escape

from sqlalchemy import Connection, text

from layers import codelists
from maps.styles import AR5_COLOURS, FOOTPRINT_COLOURS, UNKNOWN_COLOUR

MARGIN_M = 60.0


def _nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^n m) near a fifth of the map's width."""
    target = max(span_m / 5, 1.0)
    power = 10 ** math.floor(math.log10(target))
    return float(next(f * power for f in (5, 2, 1) if f * power <= target))


def _scale_bar_and_north(x0: float, y1: float, x1: float, y0: float, north: str) -> str:
    """A scale bar (lower left) and a north arrow (upper right), in map units (metres)."""
    width, height = x1 - x0, y1 - y0
    length = _nice_length(width)
    pad = width * 0.03
    font = width * 0.028
    bx, by = x0 + pad, -(y0 + pad)
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax, ay = x1 - pad * 1.5, -(y1 - pad)
    arrow = height * 0.08
    return (
        f'<g class="scale-bar"><rect x="{bx:.1f}" y="{by - font * 0.5:.1f}" '
        f'width="{length:.1f}" height="{font * 0.5:.1f}" fill="#222"/>'
        f'<rect x="{bx + length / 2:.1f}" y="{by - font * 0.5:.1f}" width="{length / 2:.1f}" '
        f'height="{font * 0.5:.1f}" fill="#fff" stroke="#222" stroke-width="{font * 0.06:.2f}"/>'
        f'<text x="{bx:.1f}" y="{by - font * 0.8:.1f}" font-size="{font:.1f}" '
        f'font-family="sans-serif">0</text>'
        f'<text x="{bx + length:.1f}" y="{by - font * 0.8:.1f}" font-size="{font:.1f}" '
        f'text-anchor="middle" font-family="sans-serif">{escape(label)}</text></g>'
        f'<g class="north-arrow"><path d="M {ax:.1f} {ay:.1f} l {-arrow * 0.3:.1f} '
        f"{arrow:.1f} l {arrow * 0.3:.1f} {-arrow * 0.25:.1f} l {arrow * 0.3:.1f} "
        f'{arrow * 0.25:.1f} z" fill="#222"/>'
        f'<text x="{ax:.1f}" y="{ay + arrow + font * 1.1:.1f}" font-size="{font * 1.2:.1f}" '
        f'text-anchor="middle" font-family="sans-serif" font-weight="bold">{escape(north)}'
        "</text></g>"
    )


def footprint_map(
    conn: Connection,
    footprints: list[tuple[str, bytes]],
    land_cover_version: int | None,
    srid: int,
    width_px: int = 640,
    *,
    north: str = "N",
    aria_label: str = "Footprints over land cover",
) -> tuple[str, list[int]]:
    """SVG of the footprints (name, WKB in ``srid``) over the land-cover classes around them
    (none when ``land_cover_version`` is None), with a scale bar and a north arrow, and the
    classes drawn (for the legend)."""
    box = conn.execute(
        text(
            "SELECT ST_XMin(e) - :m, ST_YMin(e) - :m, ST_XMax(e) + :m, ST_YMax(e) + :m FROM "
            "(SELECT ST_Extent(ST_GeomFromWKB(w, :srid)) AS e FROM unnest(CAST(:wkbs AS bytea[]))"
            " AS w) x"
        ),
        {"m": MARGIN_M, "srid": srid, "wkbs": [w for _, w in footprints]},
    ).one()
    x0, y0, x1, y1 = (float(v) for v in box)
    land = (
        []
        if land_cover_version is None
        else conn.execute(
            text(
                """
            WITH b AS (SELECT ST_MakeEnvelope(:x0, :y0, :x1, :y1, :srid) AS g)
            SELECT (f.attrs->>'arealtype')::int AS arealtype,
                   ST_AsSVG(ST_Intersection(f.geom, b.g), 0, 1) AS d
              FROM geoservice.feature f, b
             WHERE f.version_id = :v AND f.geom && b.g AND ST_Intersects(f.geom, b.g)
            """
            ),
            {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "srid": srid, "v": land_cover_version},
        ).all()
    )
    outlines = (
        conn.execute(
            text(
                "SELECT ST_AsSVG(ST_GeomFromWKB(w, :srid), 0, 1) FROM "
                "unnest(CAST(:wkbs AS bytea[])) WITH ORDINALITY AS t(w, i) ORDER BY i"
            ),
            {"srid": srid, "wkbs": [w for _, w in footprints]},
        )
        .scalars()
        .all()
    )
    height_px = int(width_px * (y1 - y0) / (x1 - x0)) if x1 > x0 else width_px
    stroke = (x1 - x0) / width_px
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_px}" height="{height_px}" '
        f'viewBox="{x0:.1f} {-y1:.1f} {x1 - x0:.1f} {y1 - y0:.1f}" role="img" '
        f'aria-label="{escape(aria_label)}">'
    ]
    for row in land:
        colour = AR5_COLOURS.get(row.arealtype, UNKNOWN_COLOUR)
        parts.append(
            f'<path d="{escape(row.d or "")}" fill="{colour}" stroke="#666" '
            f'stroke-width="{stroke * 0.5:.2f}" fill-rule="evenodd"/>'
        )
    for i, ((name, _), d) in enumerate(zip(footprints, outlines, strict=True)):
        colour = FOOTPRINT_COLOURS[i % len(FOOTPRINT_COLOURS)]
        parts.append(
            f'<path d="{escape(d or "")}" fill="none" stroke="{colour}" '
            f'stroke-width="{stroke * 3:.2f}" fill-rule="evenodd"><title>{escape(name)}</title>'
            "</path>"
        )
    parts.append(_scale_bar_and_north(x0, y1, x1, y0, north))
    parts.append("</svg>")
    drawn = sorted({row.arealtype for row in land if row.arealtype is not None})
    return "".join(parts), drawn


def legend(classes: list[int], footprint_names: list[str]) -> str:
    """HTML legend for the land-cover classes shown and the footprint outlines."""
    labels = codelists.load("ar5_arealtype")
    items = []
    for code in sorted(set(classes)):
        name = labels.label(code) if code in labels.rows else str(code)
        colour = AR5_COLOURS.get(code, UNKNOWN_COLOUR)
        items.append(
            f'<li><span class="swatch" style="background:{colour}"></span>'
            f"{escape(str(code))} {escape(name)}</li>"
        )
    for i, name in enumerate(footprint_names):
        colour = FOOTPRINT_COLOURS[i % len(FOOTPRINT_COLOURS)]
        items.append(
            f'<li><span class="swatch" style="border:3px solid {colour}"></span>{escape(name)}</li>'
        )
    return '<ul class="legend">' + "".join(items) + "</ul>"
