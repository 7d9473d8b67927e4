"""Colours and classes for map layers (shared by every map builder, static or interactive)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.i18n import number
from layers import codelists

# AR5 arealtype colours, close to NIBIO's standard AR5 map legend.
AR5_COLOURS: dict[int, str] = {
    11: "#f5a9a9",  # bebygd
    12: "#b3b3b3",  # samferdsel
    21: "#ffd16e",  # fulldyrka jord
    22: "#ffff4c",  # overflatedyrka jord
    23: "#ffffad",  # innmarksbeite
    30: "#9ecc73",  # skog
    50: "#d9d9d9",  # åpen fastmark
    60: "#8fd1d1",  # myr
    70: "#ffffff",  # snøisbre
    81: "#91e7ff",  # ferskvann
    82: "#d2ffff",  # hav
    99: "#ff00ff",  # ikke kartlagt
}
UNKNOWN_COLOUR = "#eeeeee"
FOOTPRINT_COLOURS = ("#d7191c", "#2c7bb6", "#fdae61", "#7b3294", "#1a9641")

# Arealformål by code range, after the hues of Kartverket's drawing rules for land-use plans
# (bolig yellow, næring violet, offentlig tjenesteyting red, grønnstruktur green, LNFR pale
# green, samferdsel grey, sjø og vassdrag blue). The RGB values are approximations, not
# checked against the published tegneregler table.
PLAN_COLOURS: tuple[tuple[int, int, str, str], ...] = (
    (1110, 1119, "#ffff66", "Boligbebyggelse"),
    (1120, 1129, "#ffd966", "Fritidsbebyggelse"),
    (1130, 1139, "#d2a064", "Sentrumsformål"),
    (1140, 1159, "#b4b4ff", "Kjøpesenter, forretning"),
    (1160, 1169, "#ff8c8c", "Offentlig eller privat tjenesteyting"),
    (1170, 1199, "#ffc080", "Fritids- og turistformål, andre formål"),
    (1200, 1299, "#c8a078", "Råstoffutvinning"),
    (1300, 1399, "#c8b4f0", "Næringsbebyggelse"),
    (1400, 1499, "#8cdc8c", "Idrettsanlegg"),
    (1000, 1999, "#e6c8a0", "Annen bebyggelse og anlegg"),
    (2000, 2999, "#bebebe", "Samferdselsanlegg og teknisk infrastruktur"),
    (3000, 3999, "#50b450", "Grønnstruktur"),
    (4000, 4999, "#8c8c64", "Forsvaret"),
    (5000, 5999, "#d2f0aa", "Landbruks-, natur- og friluftsformål (LNFR)"),
    (6000, 6999, "#8cc8f0", "Bruk og vern av sjø og vassdrag"),
)

QUALITY_COLOURS: dict[str, str] = {
    "svært høy kvalitet": "#7a0177",
    "høy kvalitet": "#c51b8a",
    "moderat kvalitet": "#f768a1",
    "lav kvalitet": "#fbb4b9",
    "svært lav kvalitet": "#feebe2",
}
DN13_COLOURS: dict[str, str] = {"a": "#b30000", "b": "#e34a33", "c": "#fc8d59"}
PEAT_COLOURS: dict[str, str] = {"grunn": "#c7a26b", "djup": "#6b4423", "ukjent": "#bdbdbd"}
ECOSYSTEM_COLOURS: dict[str, str] = {
    "wetland": "#35978f",
    "forest": "#1b7837",
    "freshwater": "#2166ac",
    "coastal": "#d6604d",
    "marine": "#053061",
    "semi_natural": "#dfc27d",
    "mountain": "#8c510a",
    "other": "#999999",
}
STATUS_COLOURS: dict[str, str] = {
    "planned": "#bdbdbd",
    "initiated": "#fdae61",
    "ongoing": "#f46d43",
    "completed": "#1a9850",
    "monitoring": "#66bd63",
    "abandoned": "#636363",
}
# Sequential ramps (light to dark) for classed values.
CARBON_RAMP = ("#ffffcc", "#c2e699", "#78c679", "#31a354", "#006837")
EMISSION_RAMP = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")


@dataclass(frozen=True)
class LegendEntry:
    """One row of a legend."""

    colour: str
    label: str
    outline: bool = False


@dataclass(frozen=True)
class KindStyle:
    """How a layer of one kind is drawn: which attribute picks the colour, and the legend.

    ``table`` maps attribute values (as case-folded text) to colours, so the same table
    styles inline GeoJSON in Python and vector tiles in the browser.
    """

    field: str | None
    table: dict[str, str]
    legend: tuple[LegendEntry, ...]
    fill_opacity: float = 0.7
    outline_only: bool = False
    default: str = UNKNOWN_COLOUR

    def colour(self, properties: dict[str, Any]) -> str:
        """The fill colour of a feature from its properties."""
        if self.field is None:
            return self.default
        return self.table.get(key_of(properties.get(self.field)), UNKNOWN_COLOUR)


def key_of(value: Any) -> str:
    """The lookup key of an attribute value: ``21``, ``21.0`` and ``'21'`` agree."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold() if value is not None else ""


def plan_colour(code: Any) -> str:
    """Colour of an arealformål code (first matching range)."""
    try:
        value = int(code)
    except (TypeError, ValueError):
        return UNKNOWN_COLOUR
    for low, high, colour, _ in PLAN_COLOURS:
        if low <= value <= high:
            return colour
    return UNKNOWN_COLOUR


def _codelist_style(name: str, field: str, colours: dict[Any, str]) -> KindStyle:
    cl = codelists.load(name)
    return KindStyle(
        field,
        {key_of(code): colour for code, colour in colours.items()},
        tuple(
            LegendEntry(colour, cl.label(code) if code in cl.rows else str(code))
            for code, colour in colours.items()
        ),
    )


def kind_style(kind: str, properties_seen: Sequence[str] = ()) -> KindStyle:
    """The style of a layer kind; nature types by quality when the layer has it, else value."""
    if kind == "land_cover":
        return _codelist_style("ar5_arealtype", "arealtype", AR5_COLOURS)
    if kind == "land_use_plan":
        return KindStyle(
            "arealformal",
            {key_of(code): plan_colour(code) for code in codelists.load("arealformal").codes},
            tuple(
                LegendEntry(colour, f"{label} ({low}–{high})")
                for low, high, colour, label in PLAN_COLOURS
            ),
            fill_opacity=0.75,
        )
    if kind == "nature_types":
        if "lokalitetskvalitet" in properties_seen or "verdi" not in properties_seen:
            return _codelist_style("lokalitetskvalitet", "lokalitetskvalitet", QUALITY_COLOURS)
        return _codelist_style("dn13_verdi", "verdi", DN13_COLOURS)
    if kind == "peat":
        return _codelist_style("peat_depth_class", "depth_class", PEAT_COLOURS)
    if kind == "degraded_areas":
        return _codelist_style("ecosystem_type", "ecosystem_type", ECOSYSTEM_COLOURS)
    if kind == "protected_areas":
        return KindStyle(
            None, {}, (LegendEntry("#1a9641", "Verneområde"),), 0.35, default="#1a9641"
        )
    if kind == "boundaries":
        return KindStyle(
            None,
            {},
            (LegendEntry("#333333", "Grense", outline=True),),
            0.0,
            outline_only=True,
            default="#333333",
        )
    return KindStyle(None, {}, (LegendEntry("#3388ff", "Objekt"),), 0.4, default="#3388ff")


def status_style() -> KindStyle:
    """Restoration projects by status, named as in the code list."""
    return _codelist_style("restoration_status", "status", STATUS_COLOURS)


def nice_breaks(values: Sequence[float], classes: int = 5) -> list[float]:
    """Upper bounds of quantile classes, rounded to two significant figures.

    Quantiles suit the skewed values of emissions and shares (a few large zones); rounding
    keeps the legend readable. Duplicate bounds (many equal values) are merged.
    """
    data = sorted(v for v in values if v is not None and math.isfinite(v))
    if not data:
        return []
    bounds: list[float] = []
    for i in range(1, classes + 1):
        q = data[min(len(data) - 1, math.ceil(i * len(data) / classes) - 1)]
        bound = _round_up(q)
        if not bounds or bound > bounds[-1]:
            bounds.append(bound)
    return bounds


def _round_up(value: float) -> float:
    if value <= 0:
        return 0.0
    magnitude = 10.0 ** (math.floor(math.log10(value)) - 1)
    return float(math.ceil(value / magnitude - 1e-9) * magnitude)


def class_colour(value: float | None, breaks: Sequence[float], ramp: Sequence[str]) -> str:
    """Colour of the class a value falls in (ramp spread over the number of classes)."""
    if value is None or not breaks:
        return UNKNOWN_COLOUR
    index = next((i for i, b in enumerate(breaks) if value <= b), len(breaks) - 1)
    if len(breaks) == 1:
        return ramp[-1]
    return ramp[round(index * (len(ramp) - 1) / (len(breaks) - 1))]


def class_legend(
    breaks: Sequence[float], ramp: Sequence[str], unit: str, digits: int = 0
) -> tuple[LegendEntry, ...]:
    """Legend rows 'a – b unit' for classed values."""
    entries = []
    low = 0.0
    for i, high in enumerate(breaks):
        colour = (
            ramp[-1] if len(breaks) == 1 else ramp[round(i * (len(ramp) - 1) / (len(breaks) - 1))]
        )
        entries.append(
            LegendEntry(colour, f"{number(low, digits)} – {number(high, digits)} {unit}")
        )
        low = high
    return tuple(entries)
