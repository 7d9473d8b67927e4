"""Emissions avoided by rewetting drained peat: the drained and the rewetted state, both from
the organic-soil table of :mod:`analyses.gases` (CO2, CH4 and N2O, ditches included)."""

from __future__ import annotations

from typing import Any

from analyses.gases import (
    DRAINED_USES,
    describe_items,
    drained_flux,
    drained_items,
    rewetted_flux,
    rewetted_items,
)
from core.errors import InvalidInput

# The nutrient status each drained land use allows (the first is the default): a forest
# category names its own; farmland and extraction sites can lie on either kind of peat.
NUTRIENTS: dict[str, tuple[str, ...]] = {
    "forest_poor": ("poor",),
    "forest_rich": ("rich",),
    "cropland": ("rich", "poor"),
    "grassland": ("rich", "poor"),
    "peat_extraction": ("poor", "rich"),
}


def _combinations() -> str:
    return "; ".join(f"{u}: {' or '.join(n)}" for u, n in NUTRIENTS.items())


def rewetting_effect(rewetting: dict[str, Any], area_ha: float) -> dict[str, Any]:
    """Yearly emissions avoided by rewetting drained peat, t CO2e, each gas shown.

    avoided = drained (CO2 + DOC, CH4 of land and ditches, N2O) − rewetted (CO2, CH4, DOC,
    N2O), the Tier 1 defaults with no transition period after rewetting.
    """
    use = rewetting.get("drained_land_use")
    if use not in DRAINED_USES:
        raise InvalidInput(
            f"rewetting needs drained_land_use (one of {', '.join(DRAINED_USES)}) and nutrient; "
            f"valid combinations: {_combinations()}.",
            code="bad_rewetting",
        )
    nutrient = rewetting.get("nutrient") or NUTRIENTS[use][0]
    if nutrient not in NUTRIENTS[use]:
        raise InvalidInput(
            f"drained_land_use {use} with nutrient {nutrient!r} contradicts itself (the land "
            f"use already says how rich the peat is). Valid combinations: {_combinations()}.",
            code="bad_rewetting",
        )
    drained = drained_flux(use)
    rewetted = rewetted_flux(nutrient)
    avoided = drained - rewetted
    return {
        "nutrient": nutrient,
        "t_co2e_per_ha_per_year": round(avoided.co2e(), 4),
        "t_co2e_per_year": round(avoided.co2e() * area_ha, 3),
        "area_ha": round(area_ha, 4),
        "per_ha_per_year": {
            "drained": drained.describe(6),
            "rewetted": rewetted.describe(6),
            "avoided": avoided.describe(6),
        },
        "factors": describe_items(drained_items(use) + rewetted_items(nutrient)),
    }
