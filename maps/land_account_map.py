"""Map of a land account: the building reserve coloured by the carbon at stake, and the land
moved into (red) and out of (green) building zones between the two plans."""

from __future__ import annotations

from html import escape
from typing import Any

from sqlalchemy import Engine

from core.i18n import Lang, number, t
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
INTO, OUT = "#d7191c", "#1a9641"


def _pieces(change: dict[str, Any], key: str, lang: Lang) -> dict[str, Any]:
    features = []
    for i, p in enumerate(change.get(key, [])):
        land = ", ".join(
            f"{t(f'lq.{q}', lang)} {number(daa, 1, lang)}" for q, daa in p["land_daa"].items()
        )
        features.append(
            {
                "type": "Feature",
                "id": i,
                "geometry": p["geometry"],
                "properties": {
                    "was": p["was_arealformal"] or "–",
                    "now": p["arealformal"] or "–",
                    "area_daa": number(p["area_daa"], 1, lang),
                    "land": land,
                    "emission": number(p["emission_t_co2e"].get("central", 0), 0, lang),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def land_account_map(
    engine: Engine, account: dict[str, Any], options: MapOptions, lang: Lang = "nb"
) -> MapPage:
    """The reserve by emission if built (quantile classes) and the change pieces outlined."""
    plan = account["plan"]
    reserve = {int(z["fid"]): z for z in account["reserve"]["zones"]}
    info = catalog.version_for_map(engine, plan["layer_id"], plan["version"])
    zones = version_geojson(
        engine, plan["version_id"], max_features=MAX_ZONES, fids=sorted(reserve)
    )
    emissions = []
    for feature in zones["features"]:
        zone = reserve[int(feature["id"])]
        emission = float(zone["emission_t_co2e"].get("central", 0.0))
        emissions.append(emission)
        feature["properties"] = {
            "name": zone.get("name") or zone["fid"],
            "arealformal": f"{zone['arealformal']} {zone['arealformal_name']}",
            "reserve_daa": number(zone["reserve_daa"], 1, lang),
            "emission": emission,
            "emission_text": number(emission, 0, lang),
        }
    breaks = nice_breaks(emissions)
    style = KindStyle(
        "emission",
        {key_of(e): class_colour(e, breaks, EMISSION_RAMP) for e in emissions},
        tuple(class_legend(breaks, EMISSION_RAMP, "t CO2e")),
        fill_opacity=0.8,
    )
    change = account.get("change") or {}
    into, out = _pieces(change, "into_building", lang), _pieces(change, "out_of_building", lang)
    everything = {"type": "FeatureCollection", "features": [*zones["features"], *into["features"]]}
    x0, y0, x1, y1 = bounds_of(everything) or tuple(float(v) for v in info["bounds_wgs84"])
    page = MapPage(f"Arealregnskap – {info['name']}", (x0, y0, x1, y1), options)
    page.add_geojson(
        t("la.sheet_reserve", lang),
        zones,
        style,
        popup=[
            ("name", t("la.col_name", lang)),
            ("arealformal", t("la.col_formal", lang)),
            ("reserve_daa", t("la.col_reserve", lang)),
            ("emission_text", t("la.col_emission", lang)),
        ],
    )
    popup = [
        ("was", t("la.col_from", lang)),
        ("now", t("la.col_to", lang)),
        ("area_daa", t("la.col_area", lang)),
        ("land", t("la.sheet_status", lang)),
        ("emission", t("la.col_emission", lang)),
    ]
    moved = ((t("la.into", lang), into, INTO), (t("la.out", lang), out, OUT))
    for title, collection, colour in moved:
        if collection["features"]:
            page.add_geojson(
                title,
                collection,
                KindStyle(None, {}, (), outline_only=True, default=colour),
                popup=popup,
                dash="6 3",
            )
    page.add_legend(t("la.col_emission", lang), style.legend)
    if change:
        page.add_legend(
            t("la.sheet_change", lang),
            [
                LegendEntry(INTO, t("la.into", lang), outline=True),
                LegendEntry(OUT, t("la.out", lang), outline=True),
            ],
        )
    total = account["reserve"]["total"]
    panel = (
        f"<h4>{escape(info['name'])} ({escape(str(plan['version']))})</h4>"
        f"<div>{t('la.sheet_reserve', lang)}: {number(total['reserve_daa'], 1, lang)} daa, "
        f"{number(total['emission_t_co2e'], 0, lang)} t CO2e</div>"
    )
    if change:
        panel += (
            f"<div>{t('la.into', lang)}: {number(change['into_daa'], 1, lang)} daa · "
            f"{t('la.out', lang)}: {number(change['out_daa'], 1, lang)} daa · "
            f"{t('la.net', lang)}: {number(change['net_emission_t_co2e'], 0, lang)} t CO2e</div>"
        )
    page.add_panel(panel)
    return page
