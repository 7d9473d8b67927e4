"""Map of a plan's building zones coloured by the emissions building them would cause."""

from __future__ import annotations

from html import escape

from sqlalchemy import Engine

from analyses.jobs import latest_result
from analyses.plans import analyse_plan
from core.i18n import number
from layers import catalog
from layers.features import version_geojson
from maps.page import MapOptions, MapPage, bounds_of
from maps.styles import (
    EMISSION_RAMP,
    KindStyle,
    LegendEntry,
    class_colour,
    class_legend,
    key_of,
    nice_breaks,
)

MAX_ZONES = 20_000


def plan_map(engine: Engine, layer_id: int, options: MapOptions) -> MapPage:
    """Zones classed by emissions (quantile classes), zones proposed for rezoning outlined.

    Uses the newest finished analysis of the plan's active version; without one, the plan is
    analysed now (no rezoning).
    """
    result = latest_result(engine, layer_id) or {
        "analysis_id": None,
        **analyse_plan(engine, layer_id),
    }
    zones = {int(z["fid"]): z for z in result["zones"]}
    version = result["provenance"]["plan_layer"]["version"]
    info = catalog.version_for_map(engine, layer_id, version)
    collection = version_geojson(
        engine, info["version_id"], max_features=MAX_ZONES, fids=sorted(zones)
    )
    rezoned = set(result["rezoning"]["zones"])
    emissions = []
    for feature in collection["features"]:
        zone = zones[int(feature["id"])]
        emission = (
            None if zone["already_built"] else float(zone["emission_t_co2e"].get("central", 0.0))
        )
        if emission is not None:
            emissions.append(emission)
        feature["properties"] = {
            "fid": zone["fid"],
            "arealformal": f"{zone['arealformal']} {zone['arealformal_name']}",
            "name": zone.get("name"),
            "area_daa": zone["area_daa"],
            "emission_t_co2e": round(emission, 1) if emission is not None else "allerede bebygd",
            "carbon_rich_daa": zone["flags"]["carbon_rich_daa"],
            "rezoned": "ja" if zone["fid"] in rezoned else "nei",
        }
    breaks = nice_breaks(emissions)
    table = {
        key_of(f["properties"]["emission_t_co2e"]): class_colour(
            f["properties"]["emission_t_co2e"]
            if isinstance(f["properties"]["emission_t_co2e"], float)
            else None,
            breaks,
            EMISSION_RAMP,
        )
        for f in collection["features"]
    }
    style = KindStyle(
        "emission_t_co2e",
        table,
        (*class_legend(breaks, EMISSION_RAMP, "t CO2e"), LegendEntry("#eeeeee", "Allerede bebygd")),
        fill_opacity=0.8,
    )
    x0, y0, x1, y1 = bounds_of(collection) or tuple(float(v) for v in info["bounds_wgs84"])
    page = MapPage(f"Utslipp ved utbygging – {info['name']}", (x0, y0, x1, y1), options)
    popup = [
        ("fid", "Sone"),
        ("arealformal", "Arealformål"),
        ("name", "Navn"),
        ("area_daa", "Areal (daa)"),
        ("emission_t_co2e", "Utslipp (t CO2e)"),
        ("carbon_rich_daa", "Karbonrik mark (daa)"),
        ("rezoned", "Foreslått tilbakeført til LNFR"),
    ]
    page.add_geojson("Byggesoner etter utslipp", collection, style, popup=popup)
    if rezoned:
        page.add_geojson(
            "Foreslått tilbakeført til LNFR",
            {
                "type": "FeatureCollection",
                "features": [f for f in collection["features"] if f["id"] in rezoned],
            },
            KindStyle(None, {}, (), outline_only=True, default="#1a9641"),
            popup=popup,
            dash="8 4",
        )
    page.add_legend("Utslipp ved utbygging (kvantiler)", style.legend)
    if rezoned:
        page.add_legend(
            "Scenario", [LegendEntry("#1a9641", "Foreslått tilbakeført til LNFR", outline=True)]
        )
    prov = result["provenance"]
    page.add_panel(
        f"<h4>{escape(info['name'])} (versjon {version})</h4>"
        f"<div>{len(emissions)} byggesoner vurdert, samlet "
        f"{number(result['total_emission_t_co2e'])} t CO2e ved full utbygging</div>"
        + (
            f"<div>Tilbakeføring av {len(rezoned)} soner unngår "
            f"{number(result['rezoning']['emission_avoided_t_co2e'])} t CO2e</div>"
            if rezoned
            else ""
        )
        + f'<div class="gs-note">Analyse {result["analysis_id"] or "(kjørt nå)"}; '
        f"faktortabell {escape(prov['factor_table']['name'])} v{prov['factor_table']['version']}"
        f", metode {escape(prov['preset']['name'])}</div>"
    )
    return page
