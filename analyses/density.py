"""Carbon density on the ground around a stored proposal, for its map.

Uses the land-cover version and the factor table the assessment named in its provenance, so
the map shows the figures the result was computed from, even after newer versions landed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from analyses.assessment import load_proposal
from analyses.factors import get_table, lucode_for
from layers import codelists

MARGIN_M = 80.0
DIGITS = 6  # ~0.1 m in WGS 84


def _feature(row: Any, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": row.geometry}


def proposal_map_data(engine: Engine, proposal_id: int, storage_srid: int) -> dict[str, Any]:
    """Footprints, land cover with t C/ha around them, and nature-type overlaps (GeoJSON)."""
    with engine.connect() as conn:
        stored = load_proposal(conn, proposal_id)
        footprints = stored.footprints(conn, storage_srid)
        results = {fp["name"]: fp for fp in stored.result["footprints"]}
        table = get_table(engine, int(stored.result["provenance"]["factor_table"]["id"]))
        lc_version = int(results["proposal"]["land_cover_layer"]["version_id"])
        proposal_wkb = footprints[0][1]
        land = conn.execute(
            text(
                """
                WITH box AS (
                    -- a frame around each footprint, not one box around all of them
                    SELECT ST_Union(ST_Expand(ST_Envelope(ST_GeomFromWKB(w, :srid)), :m)) AS g
                      FROM unnest(CAST(:wkbs AS bytea[])) AS w),
                prop AS (SELECT ST_GeomFromWKB(:proposal, :srid) AS g)
                SELECT f.fid,
                       (f.attrs->>'arealtype')::int AS arealtype,
                       (f.attrs->>'skogbonitet')::int AS skogbonitet,
                       (f.attrs->>'grunnforhold')::int AS grunnforhold,
                       ST_Area(ST_Intersection(f.geom, prop.g)) AS inside_m2,
                       ST_AsGeoJSON(ST_Transform(ST_Intersection(f.geom, box.g), 4326),
                                    :digits)::json AS geometry
                  FROM geoservice.feature f, box, prop
                 WHERE f.version_id = :v AND f.geom && box.g AND ST_Intersects(f.geom, box.g)
                """
            ),
            {
                "srid": storage_srid,
                "wkbs": [w for _, w in footprints],
                "m": MARGIN_M,
                "proposal": proposal_wkb,
                "v": lc_version,
                "digits": DIGITS,
            },
        ).all()
        outlines = conn.execute(
            text(
                "SELECT i, ST_AsGeoJSON(ST_Transform(ST_GeomFromWKB(w, :srid), 4326), :digits)"
                "::json AS geometry FROM unnest(CAST(:wkbs AS bytea[])) WITH ORDINALITY AS t(w, i)"
                " ORDER BY i"
            ),
            {"srid": storage_srid, "wkbs": [w for _, w in footprints], "digits": DIGITS},
        ).all()
        overlaps = []
        for name, wkb in footprints:
            for item in results[name]["flags"].get("nature_types", []):
                row = conn.execute(
                    text(
                        "SELECT ST_AsGeoJSON(ST_Transform(ST_Intersection(geom, "
                        "ST_GeomFromWKB(:w, :srid)), 4326), :digits)::json AS geometry "
                        "FROM geoservice.feature WHERE version_id = :v AND fid = :fid"
                    ),
                    {
                        "w": wkb,
                        "srid": storage_srid,
                        "digits": DIGITS,
                        "v": item["version_id"],
                        "fid": item["fid"],
                    },
                ).first()
                if row is not None:
                    attrs = item["attrs"]
                    overlaps.append(
                        _feature(
                            row,
                            {
                                "footprint": name,
                                "naturtype": attrs.get("naturtype_navn") or attrs.get("naturtype"),
                                "kvalitet": attrs.get("lokalitetskvalitet") or attrs.get("verdi"),
                                "area_m2": item["area_m2"],
                            },
                        )
                    )
    ar5 = codelists.load("ar5_arealtype")
    land_features = []
    for r in land:
        code = (
            lucode_for(r.arealtype, r.skogbonitet, r.grunnforhold, None, table.factors)
            if r.arealtype is not None
            else None
        )
        factor = table.factors.get(code) if code is not None else None
        density = (
            factor.c_above + factor.c_below + factor.c_dead + factor.c_soil if factor else None
        )
        inside_m2 = float(r.inside_m2 or 0.0)
        land_features.append(
            _feature(
                r,
                {
                    "fid": r.fid,
                    "arealtype": r.arealtype,
                    "klasse": ar5.label(r.arealtype) if r.arealtype in ar5.rows else "ukjent",
                    "skogbonitet": r.skogbonitet,
                    "faktor": factor.name if factor else "ingen faktor",
                    "t_c_per_ha": round(density, 1) if density is not None else None,
                    "areal_i_forslag_m2": round(inside_m2, 1),
                    "t_c_i_forslag": round(density * inside_m2 / 10_000, 2)
                    if density is not None
                    else None,
                },
            )
        )
    footprint_features = []
    for (name, _), row in zip(footprints, outlines, strict=True):
        fp = results[name]
        footprint_features.append(
            _feature(
                row,
                {
                    "navn": name,
                    "areal_daa": fp["area_daa"],
                    "lager_t_c": fp["stock_t_c"].get("central"),
                    "utslipp_t_co2e": fp["emission_t_co2e"].get("central"),
                    "bevart_t_c": fp["preserved_unbuilt_t_c"].get("central"),
                },
            )
        )
    return {
        "proposal": stored.result,
        "id": stored.id,
        "land": {"type": "FeatureCollection", "features": land_features},
        "footprints": footprint_features,
        "nature_overlaps": {"type": "FeatureCollection", "features": overlaps},
        "factor_table": table.describe(),
        "land_cover_version": lc_version,
    }
