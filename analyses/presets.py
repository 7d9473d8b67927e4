"""Method presets: which share of each pool is lost when land is built on, and when.

Versioned data like the factor tables; every result records the preset name and version.
Sources: the bibliography keys in each preset's ``source`` (``core/data/bibliography.csv``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, Literal

from sqlalchemy import Engine, text

from core.errors import InvalidInput
from core.versions import next_version

PeatHandling = Literal["excavated", "drained", "filled"]


def excavated_share(peat_handling: str, share: float | None) -> float:
    """The share of the built mire excavated and removed (masseutskifting), which loses its
    whole stock at once; the rest stays in place, drained or under fill (EF x horizon).

    Stated explicitly as ``share``; ``peat_handling="excavated"`` alone means all of it.
    """
    if share is not None:
        if not 0 <= share <= 1:
            raise ValueError("peat_excavated_share is a share between 0 and 1")
        return float(share)
    return 1.0 if peat_handling == "excavated" else 0.0


C_TO_CO2 = 44 / 12
# Forgone sequestration of forest: tree biomass 0.40 + forest soil 0.09 t C/ha/yr [dewit-2015].
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
    # How unsure the mineral-soil share is (None: the method defines it exactly).
    mineral_soil_loss_low: float | None = None
    mineral_soil_loss_high: float | None = None

    def mineral_soil_levels(self) -> dict[str, float]:
        """Share of mineral soil carbon lost, low / central / high."""
        central = self.mineral_soil_loss
        return {
            "low": central if self.mineral_soil_loss_low is None else self.mineral_soil_loss_low,
            "central": central,
            "high": central if self.mineral_soil_loss_high is None else self.mineral_soil_loss_high,
        }

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
            source="[miljodir-m1941] 20-year horizon: biomass and dead organic matter lost at "
            "once; 50 % of mineral soil carbon over 20 years, range 25–75 % ([project-estimates], "
            "matching the 'half from soil' of deforestation in [nibio-kalkulator]); peat left in "
            "place emits CO2, CH4 and N2O of drained organic soil × 20 years "
            "([ipcc-2014-wetlands] Tables 2.1–2.5, boreal grassland as proxy, GWP100 of "
            "[ipcc-ar5-wg1]); only a share stated as excavated loses its whole stock at once",
            mineral_soil_loss_low=0.25,
            mineral_soil_loss_high=0.75,
        ),
        Preset(
            name="svv-stock",
            version=1,
            title="Statens vegvesen / Asplan Viak stock method",
            horizon_years=None,
            mineral_soil_loss=1.0,
            mineral_soil_immediate=True,
            peat_stock_method=True,
            source="[asplanviak-svv-2015]: all carbon in the affected pools released; "
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
            source="[ipcc-2006-afolu] Ch. 8: biomass lost at once; mineral soil carbon "
            "unchanged at Tier 1 (F = 1); drained organic soil emits CO2, CH4 and N2O at "
            "[ipcc-2014-wetlands] Tables 2.1–2.5 × 20 years (GWP100 of [ipcc-ar5-wg1])",
        ),
    )
}
DEFAULT_PRESET = "miljodirektoratet-20y"
OPTIONAL_FIELDS = {"mineral_soil_loss_low", "mineral_soil_loss_high"}


def _from_row(definition: dict[str, Any], version: int) -> Preset:
    return Preset(**{**definition, "version": version})


def stored_preset(engine: Engine, name: str) -> Preset:
    """The newest stored version of the preset called ``name``."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT version, definition FROM geoservice.method_preset WHERE name = :n "
                "ORDER BY version DESC LIMIT 1"
            ),
            {"n": name},
        ).first()
        if row is None:
            names = (
                conn.execute(text("SELECT DISTINCT name FROM geoservice.method_preset ORDER BY 1"))
                .scalars()
                .all()
            )
            raise InvalidInput(
                f"Unknown method preset {name!r}. Choose one of: {', '.join(names)}.",
                code="unknown_preset",
            )
    return _from_row(row.definition, row.version)


def list_stored(engine: Engine) -> list[dict[str, Any]]:
    """Every stored preset version, newest first per name."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT name, version, definition, uploader, created_at "
                "FROM geoservice.method_preset ORDER BY name, version DESC"
            )
        ).all()
    return [
        {
            **_from_row(r.definition, r.version).describe(),
            "uploader": r.uploader,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def store_preset(engine: Engine, definition: dict[str, Any], uploader: str | None) -> Preset:
    """Validate a preset definition and store it as the next version of its name."""
    fields = {f.name for f in dataclass_fields(Preset)} - {"version"}
    unknown = set(definition) - fields
    missing = fields - set(definition) - OPTIONAL_FIELDS
    if unknown or missing:
        raise InvalidInput(
            "A preset has exactly these fields: "
            + ", ".join(sorted(fields))
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
            + (f"; missing: {', '.join(sorted(missing))}" if missing else "")
            + ".",
            code="bad_preset",
        )
    loss = definition["mineral_soil_loss"]
    horizon = definition["horizon_years"]
    if not isinstance(loss, int | float) or not 0 <= loss <= 1:
        raise InvalidInput("mineral_soil_loss is a share between 0 and 1.", code="bad_preset")
    low = definition.get("mineral_soil_loss_low")
    high = definition.get("mineral_soil_loss_high")
    if (low is not None and not isinstance(low, int | float)) or (
        high is not None and not isinstance(high, int | float)
    ):
        raise InvalidInput("mineral_soil_loss_low and _high are shares.", code="bad_preset")
    if (low is not None and not 0 <= low <= loss) or (high is not None and not loss <= high <= 1):
        raise InvalidInput(
            "mineral_soil_loss_low ≤ mineral_soil_loss ≤ mineral_soil_loss_high, all between 0 "
            "and 1.",
            code="bad_preset",
        )
    if horizon is not None and (not isinstance(horizon, int) or not 1 <= horizon <= 200):
        raise InvalidInput(
            "horizon_years is a whole number of years (1–200) or null.", code="bad_preset"
        )
    if not str(definition["source"]).strip() or not str(definition["name"]).strip():
        raise InvalidInput("A preset needs a name and a source.", code="bad_preset")
    with engine.begin() as conn:
        version = next_version(conn, "preset", definition["name"])
        conn.execute(
            text(
                "INSERT INTO geoservice.method_preset (name, version, definition, uploader) "
                "VALUES (:n, :v, CAST(:d AS jsonb), :u)"
            ),
            {"n": definition["name"], "v": version, "d": json.dumps(definition), "u": uploader},
        )
    return _from_row(definition, int(version))
