"""Greenhouse gases of organic soil, drained and rewetted, from one cited table.

``factors/organic_soil.csv`` holds the IPCC Wetlands Supplement defaults [ipcc-2014-wetlands]
and the GWP100 values [ipcc-ar5-wg1], one value per row with its unit, status and source. The
carbon assessment (peat left in place under a building) and the restoration registry
(rewetting) read the drained state from the same rows, so the two never disagree.

CO2 and CO2e are kept apart: :class:`Gases` holds tonnes of each gas; only ``co2e`` weighs them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

ORGANIC_SOIL_CSV = files("analyses") / "factors" / "organic_soil.csv"
C_TO_CO2 = 44 / 12
CH4_C_TO_CH4 = 16 / 12
N2O_N_TO_N2O = 44 / 28
DRAINED_USES = ("forest_poor", "forest_rich", "cropland", "grassland", "peat_extraction")


@dataclass(frozen=True)
class Gases:
    """Tonnes of CO2, CH4 and N2O (each its own gas, not CO2e)."""

    co2_t: float = 0.0
    ch4_t: float = 0.0
    n2o_t: float = 0.0

    def __add__(self, other: Gases) -> Gases:
        return Gases(self.co2_t + other.co2_t, self.ch4_t + other.ch4_t, self.n2o_t + other.n2o_t)

    def __sub__(self, other: Gases) -> Gases:
        return self + other.scaled(-1.0)

    def scaled(self, k: float) -> Gases:
        """Each gas times ``k`` (area, years)."""
        return Gases(self.co2_t * k, self.ch4_t * k, self.n2o_t * k)

    def co2e(self) -> float:
        """Tonnes CO2e, weighted with GWP100."""
        gwp = gwp100()
        return self.co2_t + self.ch4_t * gwp["ch4"] + self.n2o_t * gwp["n2o"]

    def describe(self, digits: int = 4) -> dict[str, float]:
        """Each gas in its own tonnes, its CO2e share, and the total."""
        gwp = gwp100()
        return {
            "co2_t": round(self.co2_t, digits),
            "ch4_t": round(self.ch4_t, digits),
            "n2o_t": round(self.n2o_t, digits),
            "ch4_t_co2e": round(self.ch4_t * gwp["ch4"], digits),
            "n2o_t_co2e": round(self.n2o_t * gwp["n2o"], digits),
            "total_t_co2e": round(self.co2e(), digits),
        }


@cache
def organic_soil_factors() -> dict[str, dict[str, Any]]:
    """Every row of the table by item, with its value, unit, status and source."""
    with ORGANIC_SOIL_CSV.open(encoding="utf-8") as fh:
        rows = {}
        for r in csv.DictReader(fh):
            try:
                value: float | str = float(r["value"])
            except ValueError:
                value = r["value"]
            rows[r["item"]] = {**r, "value": value}
        return rows


def _value(item: str) -> float:
    return float(organic_soil_factors()[item]["value"])


@cache
def gwp100() -> dict[str, float]:
    """GWP100 of CH4 and N2O (t CO2e per t of the gas)."""
    return {"ch4": _value("gwp100.ch4"), "n2o": _value("gwp100.n2o")}


def drained_items(use: str) -> list[str]:
    """The rows a drained land use is valued from (for provenance)."""
    return [
        f"drained.{use}.co2",
        "drained.doc.co2",
        f"drained.{use}.ch4",
        f"drained.{use}.ch4_ditch",
        f"drained.{use}.frac_ditch",
        f"drained.{use}.n2o",
        "gwp100.ch4",
        "gwp100.n2o",
    ]


def drained_flux(use: str) -> Gases:
    """Yearly emission of one hectare of drained organic soil (Wetlands Supplement eq. 2.2-2.6:
    on-site CO2 + DOC, CH4 of the land and of its ditches by their share, N2O)."""
    frac = _value(f"drained.{use}.frac_ditch")
    ch4_kg = (1 - frac) * _value(f"drained.{use}.ch4") + frac * _value(f"drained.{use}.ch4_ditch")
    return Gases(
        co2_t=_value(f"drained.{use}.co2") + _value("drained.doc.co2"),
        ch4_t=ch4_kg / 1000,
        n2o_t=_value(f"drained.{use}.n2o") * N2O_N_TO_N2O / 1000,
    )


def rewetted_items(nutrient: str) -> list[str]:
    """The rows the rewetted state is valued from."""
    return [
        f"rewetted.{nutrient}.co2_c",
        f"rewetted.{nutrient}.ch4_c",
        "drained.doc.co2",
        "rewetted.doc_reduction_c",
        "rewetted.n2o",
        "gwp100.ch4",
        "gwp100.n2o",
    ]


def rewetted_flux(nutrient: str) -> Gases:
    """Yearly emission of one hectare of rewetted organic soil (Tier 1, no transition)."""
    return Gases(
        co2_t=_value(f"rewetted.{nutrient}.co2_c") * C_TO_CO2
        + _value("drained.doc.co2")
        - _value("rewetted.doc_reduction_c") * C_TO_CO2,
        ch4_t=_value(f"rewetted.{nutrient}.ch4_c") * CH4_C_TO_CH4 / 1000,
        n2o_t=_value("rewetted.n2o") * N2O_N_TO_N2O / 1000,
    )


SETTLEMENT_PROXY = "grassland"


@cache
def settlement_peat_flux() -> tuple[Gases, float, float]:
    """Drained peat under a building: the proxy's yearly gases per hectare, and the low and high
    multipliers (shallow-drained grassland and cropland CO2 over the proxy's)."""
    proxy = str(organic_soil_factors()["settlement.proxy"]["value"])
    central = _value(f"drained.{proxy}.co2")
    return (
        drained_flux(proxy),
        _value("drained.grassland_shallow.co2") / central,
        _value("drained.cropland.co2") / central,
    )


def settlement_items() -> list[str]:
    """The rows peat under a building is valued from."""
    proxy = str(organic_soil_factors()["settlement.proxy"]["value"])
    return [
        "settlement.proxy",
        *drained_items(proxy),
        "drained.grassland_shallow.co2",
        "drained.cropland.co2",
    ]


def describe_items(items: list[str]) -> list[dict[str, Any]]:
    """The rows as the API shows them (item, value, unit, status, source)."""
    table = organic_soil_factors()
    return [
        {k: table[i][k] for k in ("item", "value", "unit", "status", "source")}
        for i in dict.fromkeys(items)
    ]
