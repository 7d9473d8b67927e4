"""Map of one layer version, styled by its kind; big layers come from vector tiles."""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy import Engine

from core.errors import InvalidInput
from core.i18n import number
from layers import catalog, codelists
from layers.features import version_geojson
from layers.kinds import get_kind
from maps.page import MapOptions, MapPage
from maps.styles import kind_style

POPUP_FIELDS_MAX = 12
# Inline GeoJSON drops vertices within 1 m of the line: invisible at the zooms a whole layer
# is seen at, and it keeps a kommune's N50 land cover under the page budget.
DISPLAY_SIMPLIFY_M = 1.0


def _popup_fields(kind_name: str, property_names: list[str]) -> list[tuple[str, str]]:
    kind = get_kind(kind_name)
    typed = [a.name for a in kind.attributes if a.name in property_names]
    extra = [p for p in property_names if p not in typed]
    fields: list[tuple[str, str]] = [("fid", "Objekt-id")]
    for name in typed:
        attr = kind.attribute(name)
        fields.append((name, name))
        if attr.codelist:
            fields.append((f"{name}_navn", f"{name} (navn)"))
    fields += [(p, p) for p in extra]
    return fields[:POPUP_FIELDS_MAX]


def _with_names(kind_name: str, collection: dict[str, Any]) -> None:
    """Add the code-list name next to every coded attribute (``arealtype_navn`` ...)."""
    coded = [
        (a.name, codelists.load(a.codelist)) for a in get_kind(kind_name).attributes if a.codelist
    ]
    for feature in collection["features"]:
        props = feature["properties"]
        props["fid"] = feature.get("id")
        for name, cl in coded:
            code = cl.normalise(props.get(name))
            if code is not None and code in cl.rows:
                props[f"{name}_navn"] = cl.label(code)


def layer_map(engine: Engine, layer_id: int, version: int | None, options: MapOptions) -> MapPage:
    """The layer version with legend, popups, layer control and a provenance panel."""
    info = catalog.version_for_map(engine, layer_id, version)
    kind_name = info["kind"]
    if get_kind(kind_name).is_raster:
        raise InvalidInput(
            f"Layer {layer_id} is a raster ({kind_name}); maps draw vector layers. "
            "Download the GeoTIFF from /api/layers/{id}/export?format=tif for QGIS.",
            code="raster_map",
        )
    if not info.get("bounds_wgs84"):
        raise InvalidInput(f"Layer {layer_id} version has no features to map.", code="empty_layer")
    bounds = tuple(float(v) for v in info["bounds_wgs84"])
    names = list(info.get("property_names") or [])
    style = kind_style(kind_name, names)
    title = f"{info['name']} (versjon {info['version']})"
    page = MapPage(title, (bounds[0], bounds[1], bounds[2], bounds[3]), options)
    count = int(info["feature_count"] or 0)
    inline = count <= options.inline_feature_limit
    if inline:
        collection = version_geojson(
            engine,
            info["version_id"],
            max_features=options.inline_feature_limit,
            simplify_m=DISPLAY_SIMPLIFY_M,
        )
        _with_names(kind_name, collection)
        try:
            page.add_geojson(info["name"], collection, style, popup=_popup_fields(kind_name, names))
        except InvalidInput as exc:
            if exc.code != "map_too_large":
                raise
            inline = False
    if not inline:
        page.add_vector_tiles(
            info["name"],
            f"/tiles/{layer_id}/{{z}}/{{x}}/{{y}}.pbf?version={info['version']}",
            style,
        )
    page.add_legend(info["name"], style.legend)
    drawn = "innebygd GeoJSON, forenklet 1 m" if inline else "vektorfliser"
    page.add_panel(
        f"<h4>{html.escape(title)}</h4>"
        f"<div>{html.escape(get_kind(kind_name).title)}</div>"
        f"<div>{number(count)} objekter ({drawn})</div>"
        + f'<div class="gs-note">Kilde: {html.escape(str(info.get("source_filename") or "–"))}'
        f" · {html.escape(str(info.get('licence') or 'lisens ikke oppgitt'))}</div>"
    )
    return page
