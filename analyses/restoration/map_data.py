"""What the restoration map draws: shares per kommune or fylke, and the projects."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine, text

from analyses.restoration.measure import (
    counting_statuses,
    ecosystem_code,
    region_units,
    status_on,
    unit_areas,
)
from analyses.restoration.registry import STATE_SQL
from core.errors import InvalidInput
from layers.catalog import active_versions


def shares_by_region_over(
    engine: Engine,
    *,
    level: str = "kommune",
    dates: list[date],
    ecosystem: str | None = None,
    simplify_m: float = 50.0,
) -> dict[str, dict[str, Any]]:
    """Per date, a FeatureCollection of regions with baseline, restored area and share.

    Same arithmetic as :func:`progress` (baseline = union of degraded areas in the region,
    restored = union of counting projects inside it), for all regions and dates at once, by
    local units (see :func:`unit_areas`). Regions without baseline are left out.
    Geometry is simplified for display and returned in WGS 84.
    """
    if level not in ("kommune", "fylke"):
        raise InvalidInput("level must be kommune or fylke.", code="bad_level")
    key = "kommunenummer" if level == "kommune" else "fylkesnummer"
    ecosystem = ecosystem_code(ecosystem)
    empty = {
        d.isoformat(): {"type": "FeatureCollection", "features": [], "as_of": d.isoformat()}
        for d in dates
    }
    with engine.connect() as conn:
        degraded = [v.version_id for v in active_versions(conn, "degraded_areas")]
        boundaries = [v.version_id for v in active_versions(conn, "boundaries")]
        if not degraded or not boundaries:
            return empty
        params = {
            "key": key,
            "boundaries": boundaries,
            "degraded": degraded,
            "eco": ecosystem,
            "dates": dates,
            "recorded": None,
            "counting": counting_statuses(),
            "tol": simplify_m,
        }
        areas = unit_areas(conn, region_units(some_codes=False), params, dates)
        codes = [c for c, ha in areas.baseline.items() if ha > 0]
        bases = conn.execute(
            text(
                """
                SELECT attrs->>:key AS code,
                       min(CASE WHEN :key = 'kommunenummer' OR NOT attrs ? 'kommunenummer'
                                THEN attrs->>'navn' END) AS name,
                       ST_AsGeoJSON(ST_Transform(ST_SimplifyPreserveTopology(ST_Union(geom),
                                    :tol), 4326), 5)::json AS geometry
                  FROM geoservice.feature
                 WHERE version_id = ANY(:boundaries) AND attrs->>:key = ANY(:codes)
                 GROUP BY 1 ORDER BY 1
                """
            ),
            {**params, "codes": codes},
        ).all()
    out = {}
    for d in dates:
        features = []
        for b in bases:
            baseline = areas.baseline[b.code]
            ha = areas.restored.get((b.code, d), 0.0)
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "code": b.code,
                        "name": b.name,
                        "baseline_degraded_ha": round(baseline, 2),
                        "under_restoration_ha": round(ha, 2),
                        "share_percent": round(100 * ha / baseline, 2) if baseline else 0.0,
                    },
                    "geometry": b.geometry,
                }
            )
        out[d.isoformat()] = {
            "type": "FeatureCollection",
            "features": features,
            "as_of": d.isoformat(),
            "provenance": {"degraded_area_versions": degraded, "boundary_versions": boundaries},
        }
    return out


def projects_geojson(engine: Engine, *, as_of: date) -> dict[str, Any]:
    """Current registry entries with their status on ``as_of`` (None = not yet registered)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"""
                SELECT s.id, s.data->>'name' AS name, s.ecosystem_type,
                       s.data->>'restoration_type' AS restoration_type,
                       s.data->>'responsible_org' AS organisation, s.area_ha,
                       {status_on(":as_of")} AS status,
                       ST_AsGeoJSON(ST_Transform(s.geom, 4326), 6)::json AS geometry
                  FROM ({STATE_SQL}) s WHERE s.change <> 'delete' ORDER BY s.id
                """
            ),
            {"as_of": as_of, "recorded": None},
        ).all()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.id,
                "properties": {
                    "id": r.id,
                    "name": r.name,
                    "status": r.status or "not registered yet",
                    "ecosystem_type": r.ecosystem_type,
                    "restoration_type": r.restoration_type,
                    "organisation": r.organisation,
                    "area_ha": round(float(r.area_ha), 2),
                },
                "geometry": r.geometry,
            }
            for r in rows
            if r.status is not None
        ],
    }
