"""Map of an assessed proposal: land cover by carbon density, footprints, overlaps, summary."""

from __future__ import annotations

from html import escape
from typing import Any

from sqlalchemy import Engine

from analyses.density import proposal_map_data
from core.i18n import footprint_label, number
from maps.page import MapOptions, MapPage, bounds_of
from maps.styles import (
    CARBON_RAMP,
    FOOTPRINT_COLOURS,
    KindStyle,
    LegendEntry,
    class_colour,
    key_of,
)

# Fixed density classes (t C/ha, all pools): built land and farmland, forest of low to very
# high bonitet, and mire reach into the top class.
DENSITY_BREAKS = (25.0, 75.0, 125.0, 200.0, 5000.0)


def _density_style(collection: dict[str, Any]) -> KindStyle:
    table: dict[str, str] = {}
    for f in collection["features"]:
        value = f["properties"].get("t_c_per_ha")
        f["properties"]["density_class"] = key_of(value)
        table[key_of(value)] = class_colour(value, DENSITY_BREAKS, CARBON_RAMP)
    legend = []
    low = 0.0
    for i, high in enumerate(DENSITY_BREAKS):
        label = (
            f"{number(low)}–{number(high)} t C/ha"
            if i < len(DENSITY_BREAKS) - 1
            else f"> {number(low)} t C/ha"
        )
        legend.append(LegendEntry(CARBON_RAMP[i], label))
        low = high
    return KindStyle("density_class", table, tuple(legend), fill_opacity=0.75)


def _summary(result: dict[str, Any], proposal_id: int) -> str:
    rows = []
    for fp in result["footprints"]:
        flags = fp["flags"]
        flag_text = []
        if flags.get("over_2000_t_co2e"):
            flag_text.append("over 2 000 t CO2e")
        if flags.get("over_5_daa_carbon_rich"):
            flag_text.append(f"{number(flags['carbon_rich_daa'], 1)} daa karbonrik mark (> 5)")
        if flags.get("nature_types"):
            flag_text.append(f"{len(flags['nature_types'])} naturtype(r)")
        if flags.get("protected_areas"):
            flag_text.append("verneområde")
        rows.append(
            f"<tr><td><b>{escape(footprint_label(fp['name']))}</b></td>"
            f'<td class="n">{number(fp["area_daa"], 1)} daa</td>'
            f'<td class="n">{number(fp["stock_t_c"].get("central"))} t C</td>'
            f'<td class="n">{number(fp["emission_t_co2e"].get("central"))} t CO2e</td></tr>'
            + (
                f'<tr><td colspan="4" class="gs-flag">{escape("; ".join(flag_text))}</td></tr>'
                if flag_text
                else ""
            )
        )
    best = result["least_carbon_loss"]
    comparison = ""
    if len(result["comparison"]) > 1:
        worst = result["comparison"][-1]
        comparison = (
            f"<div>Minst tap: <b>{escape(footprint_label(best))}</b>; "
            f"{escape(footprint_label(worst['name']))} slipper ut "
            f"{number(worst['more_than_least_t_co2e'])} t CO2e mer.</div>"
        )
    prov = result["provenance"]
    return (
        f"<h4>Forslag {proposal_id}: {escape(str(result['name'] or ''))}</h4>"
        f"<div>{escape(result['arealformal_name'])} ({result['arealformal']}), "
        f"utbygd andel {number(100 * result['built_share'])} %</div>"
        "<table><tr><td></td><td>Areal</td><td>Lager</td><td>Utslipp</td></tr>"
        + "".join(rows)
        + "</table>"
        + comparison
        + f'<div class="gs-note">Faktortabell {escape(prov["factor_table"]["name"])} '
        f"v{prov['factor_table']['version']}, metode {escape(prov['preset']['name'])}. "
        "Myr vises med faktoren for ukjent dybde; resultatet bruker målt dybde der den "
        "finnes.</div>"
    )


def proposal_map(
    engine: Engine, proposal_id: int, options: MapOptions, storage_srid: int
) -> MapPage:
    """Footprints over land cover coloured by t C/ha, alternatives toggleable, overlaps red."""
    data = proposal_map_data(engine, proposal_id, storage_srid)
    everything = {"features": [*data["land"]["features"], *data["footprints"]]}
    bounds = bounds_of(everything) or (10.0, 59.0, 11.0, 60.0)
    page = MapPage(f"Karbon i forslag {proposal_id}", bounds, options)
    style = _density_style(data["land"])
    page.add_geojson(
        "Karbontetthet (t C/ha)",
        data["land"],
        style,
        popup=[
            ("klasse", "Arealtype"),
            ("faktor", "Faktor"),
            ("t_c_per_ha", "t C/ha"),
            ("areal_i_forslag_m2", "Areal i forslaget (m²)"),
            ("t_c_i_forslag", "t C i forslaget"),
        ],
    )
    for i, feature in enumerate(data["footprints"]):
        colour = FOOTPRINT_COLOURS[i % len(FOOTPRINT_COLOURS)]
        name = footprint_label(str(feature["properties"]["navn"]))
        page.add_geojson(
            f"Fotavtrykk: {name}" if i == 0 else f"Alternativ: {name}",
            {"type": "FeatureCollection", "features": [feature]},
            KindStyle(None, {}, (), fill_opacity=0.0, outline_only=True, default=colour),
            popup=[
                ("navn", "Navn"),
                ("areal_daa", "Areal (daa)"),
                ("lager_t_c", "Karbonlager (t C)"),
                ("utslipp_t_co2e", "Utslipp ved utbygging (t CO2e)"),
                ("bevart_t_c", "Bevart på ubebygd del (t C)"),
            ],
            dash=None if i == 0 else "6 4",
        )
    if data["nature_overlaps"]["features"]:
        page.add_geojson(
            "Overlapp med naturtyper",
            data["nature_overlaps"],
            KindStyle(None, {}, (), fill_opacity=0.45, default="#e31a1c"),
            popup=[
                ("footprint", "Fotavtrykk"),
                ("naturtype", "Naturtype"),
                ("kvalitet", "Kvalitet / verdi"),
                ("area_m2", "Overlapp (m²)"),
            ],
            line_colour="#e31a1c",
            weight=2.0,
        )
    page.add_legend("Karbontetthet, alle lagre", style.legend)
    page.add_legend(
        "Fotavtrykk",
        [
            LegendEntry(
                FOOTPRINT_COLOURS[i % len(FOOTPRINT_COLOURS)],
                str(f["properties"]["navn"]),
                outline=True,
            )
            for i, f in enumerate(data["footprints"])
        ]
        + [LegendEntry("#e31a1c", "Overlapp med naturtype")],
    )
    page.add_panel(_summary(data["proposal"], data["id"]))
    return page
