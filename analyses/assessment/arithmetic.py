"""The numbers: stock, emissions and what stays, per class and in total, each with its
factor row, the preset and the built share."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from analyses.factors import (
    Factor,
    FactorTable,
    lucode_for,
)
from analyses.presets import (
    C_TO_CO2,
    DRAINED_PEAT_EF_T_C_HA_YR,
    FOREST_SINK_T_C_HA_YR,
    Preset,
)
from layers import codelists

BUILT_SHARE_CSV = files("analyses") / "factors" / "built_share.csv"
KU_EMISSION_THRESHOLD_T_CO2E = 2000  # [miljodir-m1941] 6.2.2
KU_CARBON_RICH_THRESHOLD_DAA = 5  # [miljodir-m1941] 6.2.2
ALREADY_BUILT = (11, 12)  # built land: converting it releases nothing [project-estimates]
BUILDING_ZONE_SHARE = {
    "yes": (0.8, "[project-estimates] building zone without a specific default"),
    "partial": (0.3, "[project-estimates] partly built zone without a specific default"),
    "no": (0.01, "[project-estimates] non-building zone without a specific default"),
}
LEVELS = ("low", "central", "high")


@dataclass(frozen=True)
class LandClass:
    """One land class inside the footprint (mire split by depth class)."""

    arealtype: int | None
    skogbonitet: int | None
    grunnforhold: int | None
    area_m2: float
    peat_class: str | None = None


def split_peat(classes: list[Any], depths: dict[str, float]) -> list[LandClass]:
    """Land classes with mire split into the depth classes of the peat layers, rest unknown."""
    out: list[LandClass] = []
    for c in classes:
        if c.arealtype != 60:
            out.append(LandClass(c.arealtype, c.skogbonitet, c.grunnforhold, float(c.area_m2)))
            continue
        remaining = float(c.area_m2)
        for depth_class in ("djup", "grunn"):
            part = min(depths.get(depth_class, 0.0), remaining)
            if part > 0:
                out.append(LandClass(60, c.skogbonitet, c.grunnforhold, part, depth_class))
                remaining -= part
        if remaining > 1e-6:
            out.append(LandClass(60, c.skogbonitet, c.grunnforhold, remaining, "ukjent"))
    return out


MEASURED = "measured"


@cache
def _built_shares() -> dict[int, tuple[float, str]]:
    with BUILT_SHARE_CSV.open(encoding="utf-8") as fh:
        return {
            int(r["arealformal"]): (float(r["built_share"]), r["source"])
            for r in csv.DictReader(fh)
        }


def default_built_share(arealformal: int) -> tuple[float, str]:
    """Default utbyggingsandel: the code, then its parent codes, then the zone type."""
    shares = _built_shares()
    for parent in (
        arealformal,
        arealformal - arealformal % 10,
        arealformal - arealformal % 100,
        arealformal - arealformal % 1000,
    ):
        if parent in shares:
            share, source = shares[parent]
            return share, f"default for arealformål {parent}: {source}"
    zone = codelists.load("arealformal").rows[arealformal]["building_zone"]
    share, source = BUILDING_ZONE_SHARE[zone]
    return share, source


def _levels(value: float, factor: Factor) -> dict[str, float]:
    return {"low": value * factor.low_factor, "central": value, "high": value * factor.high_factor}


def _add(total: dict[str, float], part: dict[str, float]) -> None:
    for level in LEVELS:
        total[level] = total.get(level, 0.0) + part[level]


def _rounded(values: dict[str, float], digits: int = 2) -> dict[str, float]:
    return {k: round(v, digits) for k, v in values.items()}


def _class_result(
    cls: LandClass, factor: Factor | None, built: float, preset: Preset, excavated: float
) -> dict[str, Any]:
    """Stock, loss and preserved carbon of one land class inside the footprint."""
    area_ha = float(cls.area_m2) / 10_000
    entry: dict[str, Any] = {
        "arealtype": cls.arealtype,
        "arealtype_name": codelists.load("ar5_arealtype").label(cls.arealtype)
        if cls.arealtype in codelists.load("ar5_arealtype").rows
        else None,
        "skogbonitet": cls.skogbonitet,
        "grunnforhold": cls.grunnforhold,
        "peat_depth_class": cls.peat_class,
        "area_m2": round(float(cls.area_m2), 2),
        "area_daa": round(area_ha * 10, 4),
        "area_ha": round(area_ha, 6),
    }
    if factor is None:
        entry["factor"] = None
        return entry
    pools = {p: getattr(factor, p) * area_ha for p in ("c_above", "c_below", "c_dead", "c_soil")}
    stock = {p: _levels(v, factor) for p, v in pools.items()}
    total_stock = {lvl: sum(stock[p][lvl] for p in stock) for lvl in LEVELS}
    built_ha = area_ha * built
    immediate_c = 0.0
    over_time_c = 0.0
    if factor.arealtype not in ALREADY_BUILT:
        immediate_c += (factor.c_above + factor.c_below + factor.c_dead) * built_ha
        if factor.arealtype == 60:
            if preset.peat_stock_method:
                immediate_c += factor.c_soil * built_ha
            else:
                # Only the share stated as excavated loses its whole stock; peat left in place
                # (drained, under fill) emits at the drained-peat factor over the horizon.
                dug_ha = built_ha * excavated
                years = preset.horizon_years or 20
                immediate_c += factor.c_soil * dug_ha
                over_time_c += min(factor.c_soil, DRAINED_PEAT_EF_T_C_HA_YR * years) * (
                    built_ha - dug_ha
                )
        else:
            lost = factor.c_soil * built_ha * preset.mineral_soil_loss
            if preset.mineral_soil_immediate:
                immediate_c += lost
            else:
                over_time_c += lost
    emission_c = immediate_c + over_time_c
    entry.update(
        {
            "factor": {
                "lucode": factor.lucode,
                "name": factor.name,
                "status": factor.status,
                "source": factor.source,
            },
            "stock_t_c": {p: _rounded(v) for p, v in stock.items()}
            | {"total": _rounded(total_stock)},
            "emission_t_co2": _rounded(
                {lvl: v * C_TO_CO2 for lvl, v in _levels(emission_c, factor).items()}
            ),
            "emission_immediate_t_co2": round(immediate_c * C_TO_CO2, 2),
            "emission_over_time_t_co2": round(over_time_c * C_TO_CO2, 2),
            "preserved_unbuilt_t_c": _rounded(
                {lvl: v * (1 - built) for lvl, v in total_stock.items()}
            ),
        }
    )
    return entry


def summarize(
    land: list[LandClass], built: float, preset: Preset, excavated: float, table: FactorTable
) -> dict[str, Any]:
    """Stocks, emissions, preserved carbon and flags of a set of land classes."""
    classes = []
    totals: dict[str, dict[str, float]] = {"stock": {}, "emission": {}, "preserved": {}}
    immediate = over_time = 0.0
    covered = no_factor = carbon_rich = forest_built_ha = 0.0
    for cls in land:
        covered += cls.area_m2
        code = (
            lucode_for(
                cls.arealtype, cls.skogbonitet, cls.grunnforhold, cls.peat_class, table.factors
            )
            if cls.arealtype is not None
            else None
        )
        factor = table.factors.get(code) if code is not None else None
        entry = _class_result(cls, factor, built, preset, excavated)
        classes.append(entry)
        if factor is None:
            no_factor += cls.area_m2
            continue
        _add(totals["stock"], entry["stock_t_c"]["total"])
        _add(totals["emission"], entry["emission_t_co2"])
        _add(totals["preserved"], entry["preserved_unbuilt_t_c"])
        immediate += entry["emission_immediate_t_co2"]
        over_time += entry["emission_over_time_t_co2"]
        if cls.arealtype == 60 or (cls.arealtype == 30 and cls.skogbonitet in (14, 15)):
            carbon_rich += cls.area_m2
        if cls.arealtype == 30:
            forest_built_ha += cls.area_m2 / 10_000 * built
    horizon = preset.horizon_years or 20
    forgone = forest_built_ha * FOREST_SINK_T_C_HA_YR * horizon * C_TO_CO2
    emission_central = totals["emission"].get("central", 0.0)
    return {
        "covered_m2": covered,
        "no_factor_m2": round(no_factor, 2),
        "classes": classes,
        "stock_t_c": _rounded(totals["stock"]),
        "emission_t_co2e": _rounded(totals["emission"]),
        "emission_immediate_t_co2e": round(immediate, 2),
        "emission_over_time_t_co2e": round(over_time, 2),
        "horizon_years": preset.horizon_years,
        "preserved_unbuilt_t_c": _rounded(totals["preserved"]),
        "forgone_sequestration_t_co2": round(forgone, 2),
        "flags": {
            "over_2000_t_co2e": emission_central > KU_EMISSION_THRESHOLD_T_CO2E,
            "carbon_rich_daa": round(carbon_rich / 1000, 4),
            "over_5_daa_carbon_rich": carbon_rich / 1000 > KU_CARBON_RICH_THRESHOLD_DAA,
        },
    }
