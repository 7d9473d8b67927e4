"""What every interactive map shares: basemap, escaping, GeoJSON budget, legend, tiles, CSP.

A builder adds layers to a :class:`MapPage`; :meth:`MapPage.render` returns the HTML either
for the service (vendor files linked from ``/static/vendor``, inline scripts carrying a
CSP nonce) or as a standalone file (vendor files embedded, for a case document).
"""

from __future__ import annotations

import html
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import folium
from branca.element import Figure
from folium.plugins import VectorGridProtobuf

from core.errors import InvalidInput
from maps.assets import check_assets, inline_assets, localise, vendor_dir
from maps.styles import KindStyle, LegendEntry

KARTVERKET_TOPO = (
    "https://cache.kartverket.no/v1/wmts/1.0.0/topo/default/webmercator/{z}/{y}/{x}.png"
)
KARTVERKET_ATTRIBUTION = '&copy; <a href="https://www.kartverket.no/">Kartverket</a>'

PAGE_CSS = """
.gs-box{background:rgba(255,255,255,.93);padding:8px 10px;border-radius:4px;
  box-shadow:0 1px 4px rgba(0,0,0,.35);font:12px/1.35 system-ui,sans-serif;color:#222}
.gs-legend{position:absolute;z-index:1000;bottom:28px;right:10px;max-height:55vh;overflow:auto;
  max-width:320px}
.gs-legend h4,.gs-panel h4{margin:0 0 4px;font-size:13px}
.gs-legend ul{list-style:none;margin:0;padding:0}.gs-legend li{margin:1px 0}
.gs-swatch{display:inline-block;width:14px;height:10px;margin-right:6px;vertical-align:middle;
  border:1px solid #777}
.gs-panel{position:absolute;z-index:1000;top:10px;left:54px;max-width:360px;max-height:60vh;
  overflow:auto}
.gs-panel table{border-collapse:collapse}.gs-panel td{padding:1px 6px 1px 0}
.gs-panel td.n{text-align:right;font-variant-numeric:tabular-nums}.gs-flag{color:#b00}
.gs-note{color:#555;font-size:11px}
"""


@dataclass(frozen=True)
class MapOptions:
    """Settings every map builder needs (the service fills them from its own settings)."""

    basemap: str = "kartverket"
    basemap_attribution: str = ""
    inline_feature_limit: int = 5000
    max_inline_bytes: int = 2_000_000
    assets_dir: Path = field(default_factory=lambda: vendor_dir(None))
    # Prefix for tile URLs: "" on served pages; the service's URL in a standalone file.
    tile_base_url: str = ""
    # Written to a file: a tile layer then needs ``tile_base_url`` to reach a service.
    standalone: bool = False
    # When reads are private, a page opened with ?access_token= passes it on to its tiles.
    access_token: str | None = None


@dataclass
class RenderedMap:
    """A finished page and what went into it (for tests, benchmarks and headers)."""

    html: str
    nonce: str | None
    inline_geojson_bytes: int
    inline_features: dict[str, int]
    tile_layers: list[str]
    basemap_origin: str | None

    def content_security_policy(self) -> str:
        """A strict CSP: scripts only from the service or carrying this page's nonce."""
        img = "'self' data:"
        if self.basemap_origin:
            img += f" {self.basemap_origin}"
        script = "'self'" + (f" 'nonce-{self.nonce}'" if self.nonce else "")
        return (
            f"default-src 'none'; script-src {script}; style-src 'self' 'unsafe-inline'; "
            f"img-src {img}; connect-src 'self'; font-src 'self'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'self'"
        )


def escape_value(value: Any) -> Any:
    """Text for popups: HTML special characters escaped; numbers and booleans unchanged."""
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict | list):
        return html.escape(json.dumps(value, ensure_ascii=False))
    return value


def escape_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Every key and value of a feature's properties escaped (see :func:`escape_value`)."""
    return {html.escape(str(k)): escape_value(v) for k, v in properties.items()}


def legend_html(title: str, entries: tuple[LegendEntry, ...] | list[LegendEntry]) -> str:
    """Legend rows with colour swatches; every label escaped."""
    rows = []
    for e in entries:
        style = (
            f"background:transparent;border:2px solid {e.colour}"
            if e.outline
            else f"background:{e.colour}"
        )
        rows.append(
            f'<li><span class="gs-swatch" style="{html.escape(style)}"></span>'
            f"{html.escape(e.label)}</li>"
        )
    return f"<h4>{html.escape(title)}</h4><ul>{''.join(rows)}</ul>"


@dataclass
class MapPage:
    """A folium map under construction, with our conventions applied."""

    title: str
    bounds: tuple[float, float, float, float]  # WGS 84 lon/lat
    options: MapOptions
    map: folium.Map = field(init=False)
    _legends: list[str] = field(default_factory=list, init=False)
    _panels: list[str] = field(default_factory=list, init=False)
    _inline_bytes: int = field(default=0, init=False)
    _inline_features: dict[str, int] = field(default_factory=dict, init=False)
    _tile_layers: list[str] = field(default_factory=list, init=False)
    _basemap_origin: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.bounds
        self.map = folium.Map(
            location=[(y0 + y1) / 2, (x0 + x1) / 2],
            tiles=None,
            control_scale=True,
            prefer_canvas=True,
            zoom_start=12,
        )
        self.map.fit_bounds([[y0, x0], [y1, x1]])
        self._add_basemap()

    def _add_basemap(self) -> None:
        choice = self.options.basemap
        if choice == "none":
            return
        url = KARTVERKET_TOPO if choice == "kartverket" else choice
        attribution = (
            KARTVERKET_ATTRIBUTION
            if choice == "kartverket"
            else html.escape(self.options.basemap_attribution or urlsplit(url).netloc)
        )
        folium.TileLayer(
            tiles=url,
            attr=attribution,
            name="Bakgrunnskart",
            max_zoom=20,
            max_native_zoom=18,
            overlay=True,
            control=False,
        ).add_to(self.map)
        parts = urlsplit(url)
        self._basemap_origin = f"{parts.scheme}://{parts.netloc}"

    # --- layers -------------------------------------------------------------------------
    def add_geojson(
        self,
        name: str,
        collection: dict[str, Any],
        style: KindStyle,
        *,
        popup: list[tuple[str, str]] | None = None,
        tooltip: list[tuple[str, str]] | None = None,
        show: bool = True,
        weight: float = 0.6,
        line_colour: str = "#555555",
        parent: Any = None,
        dash: str | None = None,
    ) -> folium.GeoJson:
        """Inline GeoJSON (escaped), counted against the page's GeoJSON budget."""
        features = [
            {**f, "properties": escape_properties(f.get("properties") or {})}
            for f in collection.get("features", [])
        ]
        data = {"type": "FeatureCollection", "features": features}
        size = len(json.dumps(data, separators=(",", ":")))
        if self._inline_bytes + size > self.options.max_inline_bytes:
            raise InvalidInput(
                f"The map would embed {(self._inline_bytes + size) / 1e6:.1f} MB of GeoJSON "
                f"(limit {self.options.max_inline_bytes / 1e6:.1f} MB); draw {name!r} from "
                "vector tiles or choose a smaller area.",
                code="map_too_large",
            )
        self._inline_bytes += size
        self._inline_features[name] = len(features)

        def style_function(feature: dict[str, Any]) -> dict[str, Any]:
            colour = style.colour(feature["properties"])
            return {
                "fillColor": colour,
                "fillOpacity": 0.0 if style.outline_only else style.fill_opacity,
                "color": colour if style.outline_only else line_colour,
                "weight": 2.0 if style.outline_only else weight,
                "dashArray": dash,
            }

        # Property keys were escaped with their values: the fields must name them escaped.
        fields = [html.escape(str(f)) for f, _ in popup or []]
        layer = folium.GeoJson(
            data,
            name=html.escape(name),
            style_function=style_function,
            show=show,
            popup=folium.GeoJsonPopup(
                fields=fields, aliases=[html.escape(a) for _, a in popup or []], localize=True
            )
            if popup and features
            else None,
            tooltip=folium.GeoJsonTooltip(
                fields=[html.escape(str(f)) for f, _ in tooltip],
                aliases=[html.escape(a) for _, a in tooltip],
            )
            if tooltip and features
            else None,
        )
        layer.add_to(parent if parent is not None else self.map)
        return layer

    def add_vector_tiles(
        self, name: str, url_path: str, style: KindStyle, mvt_layer: str = "features"
    ) -> None:
        """A big layer drawn from the service's vector tiles on a canvas renderer."""
        if self.options.standalone and not self.options.tile_base_url:
            raise InvalidInput(
                f"{name!r} is too big to embed in a standalone file (over "
                f"{self.options.max_inline_bytes / 1e6:.1f} MB of GeoJSON); pass --server with "
                "the service's URL to draw it from vector tiles, or open the map on the service.",
                code="map_too_large",
            )
        table = json.dumps(style.table).replace("<", "\\u003c")
        field_name = json.dumps(style.field)
        opacity = 0.0 if style.outline_only else style.fill_opacity
        options = (
            "{rendererFactory: L.canvas.tile, interactive: false, maxNativeZoom: 22,"
            f" vectorTileLayerStyles: {{{json.dumps(mvt_layer)}: function(p) {{"
            f" var t = {table}; var f = {field_name};"
            " var v = f === null ? null : p[f];"
            " var k = (v === undefined || v === null) ? '' : String(v).trim().toLowerCase();"
            f" var c = f === null ? {json.dumps(style.default)} : (t[k] || '#eeeeee');"
            f" return {{fill: true, fillColor: c, fillOpacity: {opacity},"
            f" color: {json.dumps('#555555' if not style.outline_only else style.default)},"
            " weight: 0.5};}}}"
        )
        url = self.options.tile_base_url + url_path
        if self.options.access_token:
            url += ("&" if "?" in url else "?") + urlencode(
                {"access_token": self.options.access_token}
            )
        VectorGridProtobuf(url, name=html.escape(name), options=options).add_to(self.map)
        self._tile_layers.append(name)

    # --- furniture ----------------------------------------------------------------------
    def add_legend(self, title: str, entries: tuple[LegendEntry, ...] | list[LegendEntry]) -> None:
        """A legend block; several stack in one box."""
        self._legends.append(legend_html(title, entries))

    def add_panel(self, inner_html: str) -> None:
        """A summary panel; the caller escapes data values (see :func:`html.escape`)."""
        self._panels.append(inner_html)

    # --- output -------------------------------------------------------------------------
    def render(self, *, standalone: bool = False) -> RenderedMap:
        """The finished HTML page."""
        check_assets(self.options.assets_dir)
        folium.LayerControl(collapsed=False).add_to(self.map)
        root = self.map.get_root()
        assert isinstance(root, Figure)
        root.header.add_child(folium.Element(f"<title>{html.escape(self.title)}</title>"))
        root.header.add_child(folium.Element('<link rel="icon" href="data:,">'))
        root.header.add_child(folium.Element(f"<style>{PAGE_CSS}</style>"))
        if self._legends:
            root.html.add_child(
                folium.Element(
                    f'<div class="gs-box gs-legend" id="gs-legend">{"".join(self._legends)}</div>'
                )
            )
        if self._panels:
            root.html.add_child(
                folium.Element(
                    f'<div class="gs-box gs-panel" id="gs-panel">{"".join(self._panels)}</div>'
                )
            )
        localise(root)
        page = root.render()
        nonce = None
        if standalone:
            page = inline_assets(page, self.options.assets_dir)
        else:
            nonce = secrets.token_urlsafe(16)
            page = _INLINE_SCRIPT.sub(f'<script nonce="{nonce}">', page)
        return RenderedMap(
            html=page,
            nonce=nonce,
            inline_geojson_bytes=self._inline_bytes,
            inline_features=dict(self._inline_features),
            tile_layers=list(self._tile_layers),
            basemap_origin=self._basemap_origin,
        )


_INLINE_SCRIPT = re.compile(r"<script>")


def bounds_of(collection: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """Lon/lat bounds of a FeatureCollection's coordinates, or None when it has none."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords: Any) -> None:
        if coords and isinstance(coords[0], int | float):
            xs.append(float(coords[0]))
            ys.append(float(coords[1]))
        else:
            for c in coords or []:
                walk(c)

    for f in collection.get("features", []):
        geom = f.get("geometry") or {}
        walk(geom.get("coordinates"))
        for g in geom.get("geometries", []):
            walk(g.get("coordinates"))
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)
