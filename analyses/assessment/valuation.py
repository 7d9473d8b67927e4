"""One footprint valued: the overlay, the arithmetic and a carbon raster where one covers
the site."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from analyses.assessment.arithmetic import KU_EMISSION_THRESHOLD_T_CO2E, LEVELS, summarize
from analyses.assessment.footprint import prepare_footprint
from analyses.assessment.overlay import Site, SiteLand, site_lands
from analyses.factors import (
    FactorTable,
)
from analyses.presets import (
    C_TO_CO2,
    Preset,
)
from analyses.raster_sums import CoverageSum
from core.errors import InvalidInput


def _apply_carbon_raster(
    summary: dict[str, Any], raster: tuple[Any, CoverageSum] | None, built: float, preset: Preset
) -> dict[str, Any] | None:
    """Where a carbon-density raster covers the site, its exact sum replaces the class values.

    The raster's pools replace the class-based stock on the share of the site it covers;
    biomass pools are lost with the built share at once, soil per the preset. Class rows keep
    their factor values; the footprint totals carry the replacement.
    """
    if raster is None:
        return None
    row, sums = raster
    pools = list((row.raster or {}).get("pools") or [])
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


def value_site(
    sl: SiteLand,
    label: str,
    *,
    built: float,
    preset: Preset,
    excavated: float,
    table: FactorTable,
    require_land_cover: bool = True,
) -> dict[str, Any]:
    """Everything the planner needs about one site, from what :func:`site_lands` read: the one
    valuation of a footprint, whether it is a proposal, an alternative or a plan zone.

    A plan zone outside every land-cover layer is reported as such (all of it without data);
    a proposal there is refused.
    """
    if sl.land_cover is None and require_land_cover:
        raise InvalidInput(
            f"The {label} footprint lies outside every land-cover layer; upload land cover "
            "(AR5 or N50) for the area first.",
            code="no_land_cover",
        )
    summary = summarize(sl.land, built, preset, excavated, sl.table or table)
    covered = summary.pop("covered_m2")
    raster = _apply_carbon_raster(summary, sl.carbon_raster, built, preset)
    summary["flags"]["nature_types"] = sl.nature_types
    summary["flags"]["protected_areas"] = sl.protected_areas
    area = sl.site.area_m2
    return {
        "name": label,
        "area_m2": round(area, 2),
        "area_daa": round(area / 1000, 4),
        "area_ha": round(area / 10_000, 6),
        "built_share": built,
        "no_land_cover_m2": round(max(area - covered, 0.0), 2),
        "no_land_cover_share": round(max(area - covered, 0.0) / area, 6) if area else 0.0,
        **summary,
        "carbon_raster": raster,
        "peat_depth": sl.peat_depth,
        "land_cover_layer": sl.land_cover,
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
    """A footprint as sent, prepared and valued as a set of one."""
    fp = prepare_footprint(conn, geoms, srid_in, srid, label)
    site = Site(key=0, wkb=fp["wkb"], area_m2=fp["area_m2"])
    sl = site_lands(conn, [site], srid, table)[0]
    result = value_site(sl, label, built=built, preset=preset, excavated=excavated, table=table)
    return {**result, "footprint_repaired": fp["repaired"]}
