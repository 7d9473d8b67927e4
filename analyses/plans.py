"""Plan-level carbon analysis: every building zone of a land-use plan, valued like a proposal.

Zones go through the proposal's own valuation (:func:`analyses.assessment.overlay.site_lands`
and :func:`analyses.assessment.valuation.value_site`): the same land-cover choice per zone,
measured peat depth, carbon rasters and nature-type overlaps, asked of PostGIS set-wise for a
few hundred zones at a time. Land already built
(AR5 11/12) inside a zone releases nothing; zones that are almost entirely built already are
listed as such. A rezoning scenario returns chosen zones to LNFR (5100) and reports the
emissions avoided.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

from analyses.assessment import default_built_share
from analyses.assessment.arithmetic import ALREADY_BUILT
from analyses.assessment.overlay import Site, SiteLand, chunked, read_ahead
from analyses.assessment.valuation import value_site
from analyses.factors import FactorTable, active_table
from analyses.presets import DEFAULT_PRESET, PeatHandling, Preset, excavated_share, stored_preset
from core import __version__
from core.bibliography import citations
from core.errors import InvalidInput, NotFound
from layers import codelists
from layers.catalog import layer_with_active_version

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
            f"Layer {layer_id} ({row.name}) holds {row.kind}; plan analysis and the land "
            "account need a land_use_plan layer.",
            code="not_a_plan",
        )
    if row.version_id is None:
        raise NotFound(f"Layer {layer_id} has no published version.", code="no_version")
    return dict(row._mapping)


def building_codes() -> list[int]:
    """Arealformål codes that zone land for building (wholly or partly)."""
    rows = codelists.load("arealformal").rows
    return [int(c) for c, r in rows.items() if r["building_zone"] in ("yes", "partial")]


def _zone_result(
    fid: int,
    zone: Any,
    sl: SiteLand,
    preset: Preset,
    excavated: float,
    table: FactorTable,
    rezone: list[int] | None,
) -> dict[str, Any]:
    """One building zone, valued exactly like a proposal on the same polygon."""
    code = int(zone.attrs["arealformal"])
    built, _ = default_built_share(code)
    label = (zone.attrs.get("feltnavn") or zone.attrs.get("plan_name")) or f"sone {fid}"
    valued = value_site(
        sl,
        label,
        built=built,
        preset=preset,
        excavated=excavated,
        table=table,
        require_land_cover=False,
    )
    area = float(zone.area_m2)
    built_already = sum(c.area_m2 for c in sl.land if c.arealtype in ALREADY_BUILT)
    entry = {
        "fid": fid,
        "arealformal": code,
        "arealformal_name": codelists.load("arealformal").label(code),
        **valued,
        "name": (zone.attrs.get("feltnavn") or zone.attrs.get("plan_name")) or None,
        "already_built_share": round(built_already / area, 6) if area else 0.0,
        "already_built": area > 0 and built_already / area >= ALREADY_BUILT_SHARE,
    }
    if fid in (rezone or []):
        lnfr_built, _ = default_built_share(LNFR)
        as_lnfr = value_site(
            sl,
            label,
            built=lnfr_built,
            preset=preset,
            excavated=excavated,
            table=table,
            require_land_cover=False,
        )
        entry["rezoned_to_lnfr_emission_t_co2e"] = as_lnfr["emission_t_co2e"]
    return entry


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
                    "SELECT fid, attrs, ST_AsBinary(geom) AS wkb, ST_Area(geom) AS area_m2, "
                    "ST_SRID(geom) AS srid FROM geoservice.feature "
                    "WHERE version_id = :v AND (attrs->>'arealformal')::int = ANY(:codes) "
                    "ORDER BY fid"
                ),
                {"v": plan["version_id"], "codes": building_codes()},
            ).all()
        }
        unknown = sorted(set(rezone or []) - set(zones))
        if unknown:
            raise InvalidInput(
                f"Zones {unknown} are not building zones of layer {layer_id}; rezoning takes "
                "the feature ids of building zones.",
                code="bad_rezone",
            )
    results: list[dict[str, Any]] = []
    land_cover: dict[int, dict[str, Any]] = {}
    fids = list(zones)
    chunks = chunked([Site(fid, bytes(zones[fid].wkb), float(zones[fid].area_m2)) for fid in fids])
    srid = int(zones[fids[0]].srid) if fids else 0
    for lands in read_ahead(engine, chunks, srid, table):
        for fid, sl in lands.items():
            results.append(_zone_result(fid, zones[fid], sl, preset, excavated, table, rezone))
            if sl.land_cover is not None:
                land_cover[int(sl.land_cover["version_id"])] = sl.land_cover
        if progress:
            progress(len(results), len(zones))
    if zones and not land_cover:
        raise InvalidInput(
            "No land-cover layer covers this plan; upload land cover first.",
            code="no_land_cover",
        )
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
            "land_cover_layers": sorted(land_cover.values(), key=lambda lc: lc["version_id"]),
            "factor_table": table.describe(),
            "preset": preset.describe(),
            "sources": citations(preset.source, *(f.source for f in table.factors.values())),
            "software": f"geoservice {__version__}",
        },
    }
