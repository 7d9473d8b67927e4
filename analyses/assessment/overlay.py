"""What the land under a footprint is: land-cover classes, mire with its peat depth, and
the nature types and protected areas it touches (overlays in PostGIS)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, text

from analyses.assessment.arithmetic import MEASURED, LandClass, split_peat
from analyses.factors import (
    PEAT_CLASS_OFFSET,
    Factor,
    FactorTable,
)
from analyses.peat import PROBE_SEARCH_M, mire_depth, nina_density
from layers.catalog import active_versions, covering_version


def land_cover_classes(
    conn: Connection, wkb: bytes, srid: int
) -> tuple[dict[str, Any] | None, list[Any]]:
    """Area per AR5 class (with bonitet and grunnforhold) inside the footprint.

    The land-cover layer is the one :func:`layers.catalog.covering_version` picks (the one
    rule every analysis uses); the overlay then reads that version only.
    """
    chosen = covering_version(conn, "land_cover", wkb, srid)
    if chosen is None:
        return None, []
    rows = conn.execute(
        text(
            """
            WITH fp AS (SELECT ST_GeomFromWKB(:wkb, :srid) AS g)
            SELECT (f.attrs->>'arealtype')::int AS arealtype,
                   (f.attrs->>'skogbonitet')::int AS skogbonitet,
                   (f.attrs->>'grunnforhold')::int AS grunnforhold,
                   sum(CASE WHEN ST_Within(f.geom, fp.g) THEN ST_Area(f.geom)
                            ELSE ST_Area(ST_Intersection(f.geom, fp.g)) END) AS area_m2
              FROM geoservice.feature f, fp
             WHERE f.version_id = ANY(:versions) AND ST_Intersects(f.geom, fp.g)
             GROUP BY 1, 2, 3
             ORDER BY 1, 2, 3
            """
        ),
        {"wkb": wkb, "srid": srid, "versions": [chosen.version_id]},
    ).all()
    if not rows:
        return None, []
    layer = {
        "layer_id": chosen.layer_id,
        "name": chosen.name,
        "version_id": chosen.version_id,
        "version": chosen.version,
    }
    return layer, list(rows)


def _peat_depth_areas(
    conn: Connection, version_id: int, wkb: bytes, srid: int, peat_versions: list[int]
) -> dict[str, float]:
    """Area of mire (AR5 60) in the footprint per depth class of the active peat layers.

    Mire polygons are intersected with the peat polygons one pair at a time (no union of the
    site's mire): peat polygons of one class are assumed not to overlap each other.
    """
    if not peat_versions:
        return {}
    rows = conn.execute(
        text(
            """
            WITH fp AS (SELECT ST_GeomFromWKB(:wkb, :srid) AS g)
            SELECT p.attrs->>'depth_class' AS depth_class,
                   sum(ST_Area(ST_Intersection(ST_Intersection(f.geom, fp.g), p.geom)))
                       AS area_m2
              FROM fp
              JOIN geoservice.feature f
                ON f.version_id = :v AND f.attrs->>'arealtype' = '60'
               AND ST_Intersects(f.geom, fp.g)
              JOIN geoservice.feature p
                ON p.version_id = ANY(:peat) AND p.attrs->>'depth_class' IN ('grunn', 'djup')
               AND ST_Dimension(p.geom) = 2 AND ST_Intersects(p.geom, f.geom)
               AND ST_Intersects(p.geom, fp.g)
             GROUP BY 1
            """
        ),
        {"wkb": wkb, "srid": srid, "v": version_id, "peat": peat_versions},
    ).all()
    return {r.depth_class: float(r.area_m2) for r in rows if r.area_m2 > 0}


def mire_land(
    conn: Connection, lc_version: int, wkb: bytes, srid: int, raw: list[Any], table: FactorTable
) -> tuple[list[LandClass], FactorTable, dict[str, Any] | None]:
    """Land classes with mire valued from measured depth when there is any, else depth classes.

    A depth raster or depth probes give the mean depth over the site's mire; the stock is then
    depth × the NINA carbon density (its quartiles give the range), in a derived row 6009.
    """
    if not any(c.arealtype == 60 for c in raw):
        return split_peat(raw, {}), table, None
    peat_versions = [v.version_id for v in active_versions(conn, "peat")]
    has_depth_data = bool(active_versions(conn, "peat_depth")) or bool(
        peat_versions
        and conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM geoservice.feature p "
                "WHERE p.version_id = ANY(:peat) AND p.attrs ? 'depth_cm' "
                "AND ST_DWithin(p.geom, ST_GeomFromWKB(:wkb, :srid), :r))"
            ),
            {"peat": peat_versions, "wkb": wkb, "srid": srid, "r": PROBE_SEARCH_M},
        ).scalar()
    )
    depth = None
    if has_depth_data:  # the site's mire as one geometry is only needed to sample depths
        mire_wkb = conn.execute(
            text(
                """
                SELECT ST_AsBinary(ST_Union(ST_Intersection(f.geom, ST_GeomFromWKB(:wkb, :srid))))
                  FROM geoservice.feature f
                 WHERE f.version_id = :v AND f.attrs->>'arealtype' = '60'
                   AND ST_Intersects(f.geom, ST_GeomFromWKB(:wkb, :srid))
                """
            ),
            {"wkb": wkb, "srid": srid, "v": lc_version},
        ).scalar()
        depth = mire_depth(conn, bytes(mire_wkb), srid) if mire_wkb else None
    if depth is None:
        depths = _peat_depth_areas(conn, lc_version, wkb, srid, peat_versions)
        return split_peat(raw, depths), table, None
    density = nina_density()
    base = table.factors.get(6000)
    central = density.t_c_per_ha_per_m("central")
    row = Factor(
        lucode=6000 + PEAT_CLASS_OFFSET[MEASURED],
        name=f"Myr, målt dybde {depth.mean_m:.2f} m",
        c_above=base.c_above if base else 0.0,
        c_below=base.c_below if base else 0.0,
        c_dead=base.c_dead if base else 0.0,
        c_soil=depth.mean_m * central,
        low_factor=density.t_c_per_ha_per_m("low") / central,
        high_factor=density.t_c_per_ha_per_m("high") / central,
        status="derived",
        source=f"mean peat depth {depth.mean_m:.2f} m from {depth.method} in {depth.source} "
        f"× carbon density {density.central_kg_m3:.1f} kg C/m³ (range "
        f"{density.low_kg_m3:.1f}–{density.high_kg_m3:.1f}; {density.source}); vegetation "
        "from the table's myr row [project-estimates]",
    )
    measured = replace(table, factors={**table.factors, row.lucode: row})
    land = [
        LandClass(c.arealtype, c.skogbonitet, c.grunnforhold, float(c.area_m2))
        if c.arealtype != 60
        else LandClass(60, c.skogbonitet, c.grunnforhold, float(c.area_m2), MEASURED)
        for c in raw
    ]
    info = {
        "mean_m": round(depth.mean_m, 4),
        "method": depth.method,
        "source": depth.source,
        "density_kg_c_m3": round(density.central_kg_m3, 3),
    }
    return land, measured, info


def overlaps(conn: Connection, wkb: bytes, srid: int, kind: str) -> list[dict[str, Any]]:
    """Features of active layers of ``kind`` that the footprint touches, with shared area."""
    layers = {v.version_id: v for v in active_versions(conn, kind)}
    if not layers:
        return []
    rows = conn.execute(
        text(
            """
            WITH fp AS (SELECT ST_GeomFromWKB(:wkb, :srid) AS g)
            SELECT f.version_id, f.fid, f.attrs, ST_Area(ST_Intersection(f.geom, fp.g)) AS area_m2
              FROM geoservice.feature f, fp
             WHERE f.version_id = ANY(:versions) AND ST_Intersects(f.geom, fp.g)
             ORDER BY area_m2 DESC
            """
        ),
        {"wkb": wkb, "srid": srid, "versions": list(layers)},
    ).all()
    return [
        {
            **dict(r._mapping),
            "layer": layers[r.version_id].name,
            "area_m2": round(float(r.area_m2), 2),
        }
        for r in rows
        if r.area_m2 > 0
    ]
