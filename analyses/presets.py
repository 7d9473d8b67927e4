"""Method presets: which share of each pool is lost when land is built on, and when.

Versioned data like the factor tables; every result records the preset name and version.
Sources: domain.md §2.3, §3 and §9.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from geoservice.errors import InvalidInput

PeatHandling = Literal["excavated", "drained", "filled"]
C_TO_CO2 = 44 / 12
# Drained organic soil under settlements: no Tier 1 EF exists; boreal grassland is the proxy
# (IPCC Wetlands Supplement Table 2.1, 20.89 t CO2/ha/yr = 5.7 t C/ha/yr) [E], domain.md §2.3.
DRAINED_PEAT_EF_T_C_HA_YR = 5.7
# Forgone sequestration of forest: tree biomass 0.40 + forest soil 0.09 t C/ha/yr [S, K8].
FOREST_SINK_T_C_HA_YR = 0.40 + 0.09


@dataclass(frozen=True)
class Preset:
    """How a method turns stocks on the built footprint into emissions."""

    name: str
    version: int
    title: str
    horizon_years: int | None
    mineral_soil_loss: float  # share of mineral SOC lost on the built footprint
    mineral_soil_immediate: bool  # lost at once (True) or spread over the horizon
    peat_stock_method: bool  # True: the whole peat stock is released, however it is handled
    source: str

    def describe(self) -> dict[str, Any]:
        """For provenance."""
        return asdict(self)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="miljodirektoratet-20y",
            version=1,
            title="Miljødirektoratet, 20-year emissions (M-1941 beregningsmal practice)",
            horizon_years=20,
            mineral_soil_loss=0.5,
            mineral_soil_immediate=False,
            peat_stock_method=False,
            source="domain.md §9 and §3: biomass and DOM lost at once; 50 % of mineral SOC "
            "over 20 years [E, matches NIBIO's 'half from soil']; excavated peat 100 % at once, "
            "peat left drained EF × 20 years",
        ),
        Preset(
            name="svv-stock",
            version=1,
            title="Statens vegvesen / Asplan Viak stock method",
            horizon_years=None,
            mineral_soil_loss=1.0,
            mineral_soil_immediate=True,
            peat_stock_method=True,
            source="domain.md §2.3 and §9: all carbon in the affected pools released (K5); "
            "reproduces the Hellemyra figure of about 77 400 t CO2",
        ),
        Preset(
            name="ipcc-tier1",
            version=1,
            title="IPCC Tier 1 (settlement SOC equal to reference)",
            horizon_years=20,
            mineral_soil_loss=0.0,
            mineral_soil_immediate=False,
            peat_stock_method=False,
            source="domain.md §3 and §9: biomass lost at once (IPCC 2006 Ch. 8); mineral SOC "
            "unchanged at Tier 1 (F = 1); drained organic soil EF × 20 years",
        ),
    )
}
DEFAULT_PRESET = "miljodirektoratet-20y"


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or an error listing the ones there are."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInput(
            f"Unknown method preset {name!r}. Choose one of: {', '.join(PRESETS)}.",
            code="unknown_preset",
        ) from None
