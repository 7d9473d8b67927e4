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
from analyses.gases import Gases, settlement_peat_flux
from analyses.presets import (
    C_TO_CO2,
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


@dataclass
class Emission:
    """What building on one class releases: CO2 at once, gases over the horizon, by level."""

    immediate_t_co2: dict[str, float]
    over_time: dict[str, Gases]

    @classmethod
    def zero(cls) -> Emission:
        """Nothing released."""
        return cls(dict.fromkeys(LEVELS, 0.0), {lvl: Gases() for lvl in LEVELS})

    def add(self, other: Emission) -> None:
        """Add another class's emission (totals of a footprint)."""
        for lvl in LEVELS:
            self.immediate_t_co2[lvl] += other.immediate_t_co2[lvl]
            self.over_time[lvl] = self.over_time[lvl] + other.over_time[lvl]

    def t_co2e(self) -> dict[str, float]:
        """Everything in CO2e, by level."""
        return {lvl: self.immediate_t_co2[lvl] + self.over_time[lvl].co2e() for lvl in LEVELS}

    def gases(self) -> Gases:
        """The central emission, gas by gas."""
        return Gases(co2_t=self.immediate_t_co2["central"]) + self.over_time["central"]

    def fields(self) -> dict[str, Any]:
        """The result fields, named for what they hold (CO2 at once; CO2e in total)."""
        return {
            "emission_t_co2e": _rounded(self.t_co2e()),
            "emission_immediate_t_co2": round(self.immediate_t_co2["central"], 2),
            "emission_over_time_t_co2e": round(self.over_time["central"].co2e(), 2),
            "emission_gases": self.gases().describe(),
        }


def _emission(factor: Factor, built_ha: float, preset: Preset, excavated: float) -> Emission:
    """Biomass and dead matter go at once; mineral soil per the preset; peat dug out loses its
    stock at once, peat left in place emits drained-peat gases over the horizon."""
    out = Emission.zero()
    if factor.arealtype in ALREADY_BUILT or built_ha <= 0:
        return out
    scale = {"low": factor.low_factor, "central": 1.0, "high": factor.high_factor}
    biomass = (factor.c_above + factor.c_below + factor.c_dead) * built_ha * C_TO_CO2
    for lvl in LEVELS:
        out.immediate_t_co2[lvl] += biomass * scale[lvl]
    if factor.arealtype == 60:
        dug_ha = built_ha if preset.peat_stock_method else built_ha * excavated
        in_place_ha = built_ha - dug_ha
        years = preset.horizon_years or 20
        flux, flux_low, flux_high = settlement_peat_flux()
        flux_scale = {"low": flux_low, "central": 1.0, "high": flux_high}
        for lvl in LEVELS:
            stock_co2 = factor.c_soil * scale[lvl] * C_TO_CO2
            out.immediate_t_co2[lvl] += stock_co2 * dug_ha
            gases = flux.scaled(in_place_ha * years * flux_scale[lvl])
            # Peat cannot lose more carbon than it holds.
            capped = min(gases.co2_t, stock_co2 * in_place_ha)
            out.over_time[lvl] = Gases(capped, gases.ch4_t, gases.n2o_t)
        return out
    share = preset.mineral_soil_levels()
    for lvl in LEVELS:
        lost = factor.c_soil * scale[lvl] * built_ha * share[lvl] * C_TO_CO2
        if preset.mineral_soil_immediate:
            out.immediate_t_co2[lvl] += lost
        else:
            out.over_time[lvl] = out.over_time[lvl] + Gases(co2_t=lost)
    return out


@cache
def _arealtype_name(code: int | None) -> str | None:
    labels = codelists.load("ar5_arealtype")
    return labels.label(code) if code in labels.rows else None


def _class_result(
    cls: LandClass, factor: Factor | None, built: float, preset: Preset, excavated: float
) -> tuple[dict[str, Any], Emission]:
    """Stock, loss and preserved carbon of one land class inside the footprint."""
    area_ha = float(cls.area_m2) / 10_000
    entry: dict[str, Any] = {
        "arealtype": cls.arealtype,
        "arealtype_name": _arealtype_name(cls.arealtype),
        "skogbonitet": cls.skogbonitet,
        "grunnforhold": cls.grunnforhold,
        "peat_depth_class": cls.peat_class,
        "area_m2": round(float(cls.area_m2), 2),
        "area_daa": round(area_ha * 10, 4),
        "area_ha": round(area_ha, 6),
    }
    if factor is None:
        entry["factor"] = None
        return entry, Emission.zero()
    pools = {p: getattr(factor, p) * area_ha for p in ("c_above", "c_below", "c_dead", "c_soil")}
    stock = {p: _levels(v, factor) for p, v in pools.items()}
    total_stock = {lvl: sum(stock[p][lvl] for p in stock) for lvl in LEVELS}
    emission = _emission(factor, area_ha * built, preset, excavated)
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
            **emission.fields(),
            "preserved_unbuilt_t_c": _rounded(
                {lvl: v * (1 - built) for lvl, v in total_stock.items()}
            ),
        }
    )
    return entry, emission


def summarize(
    land: list[LandClass], built: float, preset: Preset, excavated: float, table: FactorTable
) -> dict[str, Any]:
    """Stocks, emissions, preserved carbon and flags of a set of land classes."""
    classes = []
    totals: dict[str, dict[str, float]] = {"stock": {}, "preserved": {}}
    emission = Emission.zero()
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
        entry, class_emission = _class_result(cls, factor, built, preset, excavated)
        classes.append(entry)
        if factor is None:
            no_factor += cls.area_m2
            continue
        _add(totals["stock"], entry["stock_t_c"]["total"])
        _add(totals["preserved"], entry["preserved_unbuilt_t_c"])
        emission.add(class_emission)
        if cls.arealtype == 60 or (cls.arealtype == 30 and cls.skogbonitet in (14, 15)):
            carbon_rich += cls.area_m2
        if cls.arealtype == 30:
            forest_built_ha += cls.area_m2 / 10_000 * built
    horizon = preset.horizon_years or 20
    forgone = forest_built_ha * FOREST_SINK_T_C_HA_YR * horizon * C_TO_CO2
    emission_central = emission.t_co2e()["central"]
    return {
        "covered_m2": covered,
        "no_factor_m2": round(no_factor, 2),
        "classes": classes,
        "stock_t_c": _rounded(totals["stock"]),
        **emission.fields(),
        "horizon_years": preset.horizon_years,
        "preserved_unbuilt_t_c": _rounded(totals["preserved"]),
        "forgone_sequestration_t_co2": round(forgone, 2),
        "flags": {
            "over_2000_t_co2e": emission_central > KU_EMISSION_THRESHOLD_T_CO2E,
            "carbon_rich_daa": round(carbon_rich / 1000, 4),
            "over_5_daa_carbon_rich": carbon_rich / 1000 > KU_CARBON_RICH_THRESHOLD_DAA,
        },
    }
