"""Map of restoration progress: share of degraded area under restoration per region and year."""

from __future__ import annotations

from datetime import date
from html import escape

import folium
from sqlalchemy import Engine

from analyses.restoration import projects_geojson, shares_by_region_over, targets
from maps.page import MapOptions, MapPage, bounds_of
from maps.styles import (
    STATUS_COLOURS,
    KindStyle,
    LegendEntry,
    class_colour,
    key_of,
    status_style,
)

# Classes that put the targets on the legend: 15 % (national) and 30 % (GBF Target 2).
SHARE_BREAKS = (5.0, 15.0, 30.0, 100.0)
SHARE_COLOURS = ("#edf8e9", "#bae4b3", "#74c476", "#238b45")
MAX_YEARS = 10


def restoration_map(
    engine: Engine,
    options: MapOptions,
    *,
    level: str = "kommune",
    as_of: date | None = None,
    ecosystem: str | None = None,
) -> MapPage:
    """Choropleth per region with one layer per year (the as-of control), projects by status."""
    as_of = as_of or date.today()
    first_year = max(as_of.year - MAX_YEARS + 1, 1900)
    years = list(range(first_year, as_of.year + 1))
    ends = {year: as_of if year == as_of.year else date(year, 12, 31) for year in years}
    shares = shares_by_region_over(
        engine, level=level, dates=list(ends.values()), ecosystem=ecosystem
    )
    by_year = {year: shares[ends[year].isoformat()] for year in years}
    projects = projects_geojson(engine, as_of=as_of)
    latest = by_year[as_of.year]
    bounds = bounds_of({"features": latest["features"] + projects["features"]}) or (
        4.0,
        57.9,
        31.2,
        71.2,
    )
    page = MapPage("Restaurering mot 30 %-målet", bounds, options)
    for year, fc in by_year.items():
        for f in fc["features"]:
            f["properties"]["share_class"] = key_of(f["properties"]["share_percent"])
        style = KindStyle(
            "share_class",
            {
                key_of(f["properties"]["share_percent"]): class_colour(
                    f["properties"]["share_percent"], SHARE_BREAKS, SHARE_COLOURS
                )
                for f in fc["features"]
            },
            (),
            fill_opacity=0.7,
        )
        group = folium.FeatureGroup(
            name=f"Andel per {level} {fc['as_of']}", overlay=False, show=year == as_of.year
        )
        group.add_to(page.map)
        page.add_geojson(
            f"Andel {year}",
            fc,
            style,
            parent=group,
            popup=[
                ("code", "Nummer"),
                ("name", "Navn"),
                ("baseline_degraded_ha", "Forringet areal (ha)"),
                ("under_restoration_ha", "Under restaurering (ha)"),
                ("share_percent", "Andel (%)"),
            ],
            weight=1.0,
        )
    status = status_style()
    page.add_geojson(
        "Restaureringsprosjekter",
        projects,
        status,
        popup=[
            ("id", "Prosjekt"),
            ("name", "Navn"),
            ("status", "Status"),
            ("ecosystem_type", "Økosystem"),
            ("restoration_type", "Tiltak"),
            ("organisation", "Ansvarlig"),
            ("area_ha", "Areal (ha)"),
        ],
        weight=1.5,
        line_colour="#222222",
    )
    goals = "; ".join(
        f"{t['share'] * 100:.0f} % innen {t['year']} ({t['name']})" for t in targets()
    )
    page.add_legend(
        f"Andel av forringet areal under restaurering. Mål: {goals}",
        [
            LegendEntry(SHARE_COLOURS[0], "0–5 %"),
            LegendEntry(SHARE_COLOURS[1], "5–15 %"),
            LegendEntry(SHARE_COLOURS[2], "15–30 % (nasjonalt mål nådd)"),
            LegendEntry(SHARE_COLOURS[3], "≥ 30 % (GBF mål 2 nådd)"),
        ],
    )
    page.add_legend(
        f"Prosjekter etter status {as_of.isoformat()}",
        [e for e in status.legend if e.colour in STATUS_COLOURS.values()],
    )
    page.add_panel(
        f"<h4>Restaurering per {escape(level)}</h4>"
        f"<div>Velg år (status 31.12) i lagvelgeren; {len(latest['features'])} områder med "
        f"forringet areal, {len(projects['features'])} prosjekter registrert per "
        f"{as_of.isoformat()}.</div>"
        '<div class="gs-note">Areal under restaurering = union av prosjekter med tellende '
        "status innenfor det forringede arealet; overlapp telles én gang.</div>"
    )
    return page
