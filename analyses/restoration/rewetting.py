"""Emissions avoided by rewetting drained peat (the drained and the rewetted state)."""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files
from typing import Any

from core.errors import InvalidInput

REWETTING_CSV = files("analyses") / "factors" / "rewetting.csv"
DRAINED_USES = ("forest_poor", "forest_rich", "cropland", "grassland", "peat_extraction")
# The nutrient status each drained land use allows (the first is the default): a forest
# category names its own; farmland and extraction sites can lie on either kind of peat.
NUTRIENTS: dict[str, tuple[str, ...]] = {
    "forest_poor": ("poor",),
    "forest_rich": ("rich",),
    "cropland": ("rich", "poor"),
    "grassland": ("rich", "poor"),
    "peat_extraction": ("poor", "rich"),
}


@cache
def rewetting_factors() -> dict[str, dict[str, Any]]:
    """IPCC Wetlands Supplement defaults used for rewetting, each with its source."""
    with REWETTING_CSV.open(encoding="utf-8") as fh:
        return {r["item"]: {**r, "value": float(r["value"])} for r in csv.DictReader(fh)}


def rewetting_effect(rewetting: dict[str, Any], area_ha: float) -> dict[str, Any]:
    """Yearly emissions avoided by rewetting drained peat, t CO2e, with the factors used.

    avoided = (drained CO2 + drained DOC) − (rewetted CO2 + rewetted CH4 + rewetted DOC), the
    Tier 1 defaults with no transition period after rewetting.
    """
    use = rewetting.get("drained_land_use")
    if use not in DRAINED_USES:
        raise InvalidInput(
            f"rewetting needs drained_land_use (one of {', '.join(DRAINED_USES)}) and nutrient "
            "(poor or rich).",
            code="bad_rewetting",
        )
    nutrient = rewetting.get("nutrient") or NUTRIENTS[use][0]
    if nutrient not in NUTRIENTS[use]:
        combos = "; ".join(f"{u}: {' or '.join(n)}" for u, n in NUTRIENTS.items())
        raise InvalidInput(
            f"drained_land_use {use} with nutrient {nutrient!r} contradicts itself (the land "
            f"use already says how rich the peat is). Valid combinations: {combos}.",
            code="bad_rewetting",
        )
    f = rewetting_factors()
    c_to_co2 = 44 / 12
    drained = f[f"drained_{use}"]["value"] + f["drained_doc"]["value"]
    rewetted_co2 = f[f"rewetted_co2_c_{nutrient}"]["value"] * c_to_co2
    ch4 = f[f"rewetted_ch4_c_{nutrient}"]["value"] / 1000 * 16 / 12 * f["gwp100_ch4"]["value"]
    doc = f["drained_doc"]["value"] - f["doc_reduction_c"]["value"] * c_to_co2
    per_ha = drained - (rewetted_co2 + ch4 + doc)
    used = [
        f"drained_{use}",
        "drained_doc",
        f"rewetted_co2_c_{nutrient}",
        f"rewetted_ch4_c_{nutrient}",
        "doc_reduction_c",
        "gwp100_ch4",
    ]
    return {
        "t_co2e_per_ha_per_year": round(per_ha, 4),
        "t_co2e_per_year": round(per_ha * area_ha, 3),
        "area_ha": round(area_ha, 4),
        "factors": [
            {k: f[name][k] for k in ("item", "value", "unit", "status", "source")} for name in used
        ],
    }
