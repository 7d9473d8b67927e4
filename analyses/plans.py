"""Plan-level carbon analysis: every building zone of a land-use plan, in one overlay.

Zones are overlaid with land cover (and peat depth classes) set-wise in PostGIS, then each
zone is valued with the same per-class arithmetic as a single proposal. Land already built
(AR5 11/12) inside a zone releases nothing; zones that are almost entirely built already are
listed as such. A rezoning scenario returns chosen zones to LNFR (5100) and reports the
emissions avoided.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

from analyses.assessment import default_built_share, split_peat, summarize
from analyses.factors import active_table
from analyses.presets import DEFAULT_PRESET, PeatHandling, excavated_share, stored_preset
from core import __version__
from core.bibliography import citations
from core.errors import InvalidInput, NotFound
from layers import codelists
from layers.catalog import active_versions, covering_version, layer_with_active_version

LNFR = 5100
ALREADY_BUILT_SHARE = 0.99
ProgressFn = Callable[[int, int], None]


def plan_version(conn: Connection, layer_id: int) -> dict[str, Any]:
    """The active version of a land-use plan layer; NotFound or 422 otherwise."""
    row = layer_with_active_version(conn, layer_id)
    if row is None:
        raise NotFound(f"There is no layer {layer_id}.", code="layer_not_found")
    if row.kind != "land_use_plan":
        raise InvalidInput(
            f"Layer {layer_id} ({row.name}) holds {row.kind}; plan analysis needs a "
            "land_use_plan layer.",
            code="not_a_plan",
        )
    if row.version_id is None:
        raise NotFound(f"Layer {layer_id} has no published version.", code="no_version")
    return dict(row._mapping)


def _building_codes() -> list[int]:
    rows = codelists.load("arealformal").rows
    return [int(c) for c, r in rows.items() if r["building_zone"] in ("yes", "partial")]


def _overlay(conn: Connection, plan_version: int) -> tuple[dict[str, Any] | None, list[Any]]:
    """Zone × land-cover class areas for the land-cover layer that covers the plan best."""
    extent = conn.execute(
        text(
            "SELECT ST_AsBinary(ST_Extent(geom)::geometry) AS wkb, min(ST_SRID(geom)) AS srid "
            "FROM geoservice.feature WHERE version_id = :p"
        ),
        {"p": plan_version},
    ).one()
    if extent.wkb is None:
        return None, []
    lc = covering_version(conn, "land_cover", extent.wkb, int(extent.srid))
    if lc is None:
        return None, []
    rows = conn.execute(
        text(
            """
            WITH z AS (
                SELECT fid, geom FROM geoservice.feature
                 WHERE version_id = :p AND (attrs->>'arealformal')::int = ANY(:codes))
            SELECT z.fid AS zone,
                   (f.attrs->>'arealtype')::int AS arealtype,
                   (f.attrs->>'skogbonitet')::int AS skogbonitet,
                   (f.attrs->>'grunnforhold')::int AS grunnforhold,
                   sum(CASE WHEN ST_Within(f.geom, z.geom) THEN ST_Area(f.geom)
                            ELSE ST_Area(ST_Intersection(f.geom, z.geom)) END) AS area_m2
              FROM z JOIN geoservice.feature f
                ON f.version_id = :lc AND ST_Intersects(f.geom, z.geom)
             GROUP BY 1, 2, 3, 4
             ORDER BY 1, 2, 3, 4
            """
        ),
        {"p": plan_version, "lc": lc.version_id, "codes": _building_codes()},
    ).all()
    return {k: lc._mapping[k] for k in ("layer_id", "name", "version_id", "version")}, list(rows)


def _peat_by_zone(
    conn: Connection, plan_version: int, lc_version: int
) -> dict[int, dict[str, float]]:
    rows = conn.execute(
        text(
            """
            WITH z AS (
                SELECT fid, geom FROM geoservice.feature
                 WHERE version_id = :p AND (attrs->>'arealformal')::int = ANY(:codes)),
                 myr AS (
                SELECT z.fid, ST_Union(ST_Intersection(f.geom, z.geom)) AS g
                  FROM z JOIN geoservice.feature f
                    ON f.version_id = :lc AND f.attrs->>'arealtype' = '60'
                   AND ST_Intersects(f.geom, z.geom)
                 GROUP BY z.fid),
                 peat AS (
                SELECT p.attrs->>'depth_class' AS depth_class, p.geom
                  FROM geoservice.feature p
                 WHERE p.version_id = ANY(:peat)
                   AND p.attrs->>'depth_class' IN ('grunn', 'djup')
                   AND ST_Dimension(p.geom) = 2)
            SELECT myr.fid, peat.depth_class,
                   ST_Area(ST_Intersection(ST_Union(peat.geom), myr.g)) AS area_m2
              FROM myr JOIN peat ON ST_Intersects(peat.geom, myr.g)
             GROUP BY myr.fid, peat.depth_class, myr.g
            """
        ),
        {
            "p": plan_version,
            "lc": lc_version,
            "codes": _building_codes(),
            "peat": [v.version_id for v in active_versions(conn, "peat")],
        },
    ).all()
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for r in rows:
        out[int(r.fid)][r.depth_class] = float(r.area_m2)
    return out


def analyse_plan(
    engine: Engine,
    layer_id: int,
    *,
    preset_name: str = DEFAULT_PRESET,
    peat_handling: PeatHandling = "drained",
    peat_excavated_share: float | None = None,
    rezone: list[int] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Assess every building zone; rank; totals per arealformål; optional rezoning."""
    preset = stored_preset(engine, preset_name)
    try:
        excavated = excavated_share(peat_handling, peat_excavated_share)
    except ValueError as exc:
        raise InvalidInput(f"{exc}.", code="bad_peat_excavated_share") from exc
    table = active_table(engine)
    with engine.connect() as conn:
        plan = plan_version(conn, layer_id)
        zones = {
            int(r.fid): r
            for r in conn.execute(
                text(
                    "SELECT fid, attrs, ST_Area(geom) AS area_m2 FROM geoservice.feature "
                    "WHERE version_id = :v AND (attrs->>'arealformal')::int = ANY(:codes) "
                    "ORDER BY fid"
                ),
                {"v": plan["version_id"], "codes": _building_codes()},
            ).all()
        }
        unknown = sorted(set(rezone or []) - set(zones))
        if unknown:
            raise InvalidInput(
                f"Zones {unknown} are not building zones of layer {layer_id}; rezoning takes "
                "the feature ids of building zones.",
                code="bad_rezone",
            )
        lc, overlay = _overlay(conn, plan["version_id"])
        if lc is None:
            raise InvalidInput(
                "No land-cover layer covers this plan; upload land cover first.",
                code="no_land_cover",
            )
        peat = _peat_by_zone(conn, plan["version_id"], lc["version_id"])
    by_zone: dict[int, list[Any]] = defaultdict(list)
    for r in overlay:
        by_zone[int(r.zone)].append(r)
    results = []
    for i, (fid, zone) in enumerate(zones.items(), start=1):
        code = int(zone.attrs["arealformal"])
        built, _ = default_built_share(code)
        land = split_peat(by_zone.get(fid, []), peat.get(fid, {}))
        summary = summarize(land, built, preset, excavated, table)
        area = float(zone.area_m2)
        built_already = sum(c.area_m2 for c in land if c.arealtype in (11, 12))
        entry = {
            "fid": fid,
            "arealformal": code,
            "arealformal_name": codelists.load("arealformal").label(code),
            "name": zone.attrs.get("plan_name") or None,
            "area_m2": round(area, 2),
            "area_daa": round(area / 1000, 4),
            "built_share": built,
            "already_built_share": round(built_already / area, 6) if area else 0.0,
            "already_built": area > 0 and built_already / area >= ALREADY_BUILT_SHARE,
            "no_land_cover_share": round(max(area - summary.pop("covered_m2"), 0) / area, 6)
            if area
            else 0.0,
            **summary,
        }
        if fid in (rezone or []):
            lnfr_built, _ = default_built_share(LNFR)
            as_lnfr = summarize(land, lnfr_built, preset, excavated, table)
            entry["rezoned_to_lnfr_emission_t_co2e"] = as_lnfr["emission_t_co2e"]
        results.append(entry)
        if progress:
            progress(i, len(zones))
    assessed = [z for z in results if not z["already_built"]]

    def central(z: dict[str, Any], key: str = "emission_t_co2e") -> float:
        return float(z[key].get("central", 0.0))

    per_formal: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for z in assessed:
        t = per_formal[z["arealformal"]]
        t["zones"] += 1
        t["area_daa"] += z["area_daa"]
        t["emission_t_co2e"] += central(z)
        t["stock_t_c"] += central(z, "stock_t_c")
        t["carbon_rich_daa"] += z["flags"]["carbon_rich_daa"]
    rezoned = [z for z in results if "rezoned_to_lnfr_emission_t_co2e" in z]
    avoided = sum(
        central(z) - float(z["rezoned_to_lnfr_emission_t_co2e"].get("central", 0.0))
        for z in rezoned
    )
    return {
        "peat_handling": peat_handling,
        "peat_excavated_share": excavated,
        "layer_id": layer_id,
        "plan": plan["name"],
        "plan_version": plan["version"],
        "zones": results,
        "ranking_by_emission": [z["fid"] for z in sorted(assessed, key=central, reverse=True)],
        "ranking_by_carbon_rich_area": [
            z["fid"]
            for z in sorted(assessed, key=lambda z: z["flags"]["carbon_rich_daa"], reverse=True)
        ],
        "already_built_zones": [z["fid"] for z in results if z["already_built"]],
        "totals_per_arealformal": {
            str(code): {k: round(v, 2) for k, v in t.items()} for code, t in per_formal.items()
        },
        "total_emission_t_co2e": round(sum(central(z) for z in assessed), 2),
        "rezoning": {
            "zones": [z["fid"] for z in rezoned],
            "emission_avoided_t_co2e": round(avoided, 2),
        },
        "provenance": {
            "plan_layer": {
                "id": layer_id,
                "version_id": plan["version_id"],
                "version": plan["version"],
            },
            "land_cover_layer": lc,
            "factor_table": table.describe(),
            "preset": preset.describe(),
            "sources": citations(preset.source, *(f.source for f in table.factors.values())),
            "software": f"geoservice {__version__}",
        },
    }
