"""One footprint valued: the overlay, the arithmetic and a carbon raster where one covers
the site."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from analyses.assessment.arithmetic import KU_EMISSION_THRESHOLD_T_CO2E, LEVELS, summarize
from analyses.assessment.footprint import prepare_footprint
from analyses.assessment.overlay import land_cover_classes, mire_land, overlaps
from analyses.factors import (
    FactorTable,
)
from analyses.presets import (
    C_TO_CO2,
    Preset,
)
from analyses.raster_sums import coverage_sum
from core.errors import InvalidInput
from layers.catalog import covering_version


def _apply_carbon_raster(
    conn: Connection,
    wkb: bytes,
    srid: int,
    summary: dict[str, Any],
    built: float,
    preset: Preset,
) -> dict[str, Any] | None:
    """Where a carbon-density raster covers the site, its exact sum replaces the class values.

    The raster's pools replace the class-based stock on the share of the site it covers;
    biomass pools are lost with the built share at once, soil per the preset. Class rows keep
    their factor values; the footprint totals carry the replacement.
    """
    row = covering_version(conn, "carbon_density", wkb, srid)
    if row is None or row.storage_path is None:
        return None
    pools_json = (row.raster or {}).get("pools")
    sums = coverage_sum(row.storage_path, wkb)
    if sums.covered_m2 <= 0:
        return None
    pools = list(pools_json or [])
    share = min(sums.covered_share, 1.0)
    class_pools = sum(
        (c.get("stock_t_c") or {}).get(p, {}).get("central", 0.0)
        for c in summary["classes"]
        for p in pools
    )
    replaced = class_pools * share
    delta_stock = sums.total - replaced
    soil_only = pools == ["c_soil"]
    loss_share = preset.mineral_soil_levels() if soil_only else dict.fromkeys(LEVELS, 1.0)
    delta_emission = {lvl: delta_stock * built * loss_share[lvl] * C_TO_CO2 for lvl in LEVELS}
    for key, delta in (
        ("stock_t_c", delta_stock),
        ("preserved_unbuilt_t_c", delta_stock * (1 - built)),
    ):
        summary[key] = {lvl: round(v + delta, 2) for lvl, v in summary[key].items()}
    summary["emission_t_co2e"] = {
        lvl: round(v + delta_emission[lvl], 2) for lvl, v in summary["emission_t_co2e"].items()
    }
    central = delta_emission["central"]
    immediate = not soil_only or preset.mineral_soil_immediate
    target = "emission_immediate_t_co2" if immediate else "emission_over_time_t_co2e"
    summary[target] = round(summary[target] + central, 2)
    gases = summary["emission_gases"]
    for key in ("co2_t", "total_t_co2e"):
        gases[key] = round(gases[key] + central, 4)
    summary["flags"]["over_2000_t_co2e"] = (
        summary["emission_t_co2e"].get("central", 0.0) > KU_EMISSION_THRESHOLD_T_CO2E
    )
    return {
        "layer_id": row.layer_id,
        "name": row.name,
        "version_id": row.version_id,
        "version": row.version,
        "pools": pools,
        "covered_share": round(share, 6),
        "raster_t_c": round(sums.total, 4),
        "replaced_class_t_c": round(replaced, 4),
    }


def assess_footprint(
    conn: Connection,
    label: str,
    geoms: list[dict[str, Any]],
    *,
    srid_in: int,
    srid: int,
    built: float,
    preset: Preset,
    excavated: float,
    table: FactorTable,
) -> dict[str, Any]:
    """Everything the planner needs about one footprint."""
    fp = prepare_footprint(conn, geoms, srid_in, srid, label)
    lc, raw_classes = land_cover_classes(conn, fp["wkb"], srid)
    if lc is None:
        raise InvalidInput(
            f"The {label} footprint lies outside every land-cover layer; upload land cover "
            "(AR5 or N50) for the area first.",
            code="no_land_cover",
        )
    land, table, depth = mire_land(conn, lc["version_id"], fp["wkb"], srid, raw_classes, table)
    summary = summarize(land, built, preset, excavated, table)
    covered = summary.pop("covered_m2")
    nature = overlaps(conn, fp["wkb"], srid, "nature_types")
    protected = overlaps(conn, fp["wkb"], srid, "protected_areas")
    raster = _apply_carbon_raster(conn, fp["wkb"], srid, summary, built, preset)
    summary["flags"]["nature_types"] = nature
    summary["flags"]["protected_areas"] = protected
    return {
        "name": label,
        "area_m2": round(fp["area_m2"], 2),
        "area_daa": round(fp["area_m2"] / 1000, 4),
        "area_ha": round(fp["area_m2"] / 10_000, 6),
        "footprint_repaired": fp["repaired"],
        "built_share": built,
        "no_land_cover_m2": round(max(fp["area_m2"] - covered, 0.0), 2),
        "no_land_cover_share": round(max(fp["area_m2"] - covered, 0.0) / fp["area_m2"], 6),
        **summary,
        "carbon_raster": raster,
        "peat_depth": depth,
        "land_cover_layer": lc,
    }
