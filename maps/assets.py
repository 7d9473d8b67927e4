"""Leaflet and Leaflet.VectorGrid served by the service itself, never fetched from a CDN.

The files come from the npm registry at set-up (``maps/assets/package.json``, pinned in its
lock file). Folium names CDN URLs for its own defaults (Leaflet, jQuery, Bootstrap, Font
Awesome, ...); :func:`localise` swaps the ones our maps use for local paths and drops the
rest, and refuses any it does not know, so nothing is ever loaded from the internet.
"""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path
from typing import Any

from core.errors import ServiceUnavailable

PACKAGE_DIR = Path(__file__).resolve().parent / "assets"
URL_PREFIX = "/static/vendor"

# folium resource name -> file under node_modules
VENDOR_FILES: dict[str, str] = {
    "leaflet": "leaflet/dist/leaflet.js",
    "leaflet_css": "leaflet/dist/leaflet.css",
    "vectorGrid": "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
}
# folium defaults our maps do not use (markers with icons, Bootstrap popups).
UNUSED = frozenset(
    {
        "jquery",
        "bootstrap",
        "awesome_markers",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    }
)

log = logging.getLogger(__name__)


def vendor_dir(configured: Path | None) -> Path:
    """The node_modules folder holding the map libraries."""
    return configured if configured is not None else PACKAGE_DIR / "node_modules"


def check_assets(root: Path) -> None:
    """Fail with the fix when set-up has not installed the map libraries."""
    missing = [rel for rel in VENDOR_FILES.values() if not (root / rel).is_file()]
    if missing:
        # The folders are the operator's business (logged), not a visitor's.
        log.error("map libraries missing under %s: %s", root, ", ".join(missing))
        raise ServiceUnavailable(
            f"The map libraries are not installed ({', '.join(missing)} missing). An "
            "administrator runs `bash scripts/bootstrap.sh run` once, or "
            "`npm ci --prefix maps/assets` in the checkout.",
            code="map_assets_missing",
        )


def _children(element: Any) -> list[Any]:
    found = [element]
    for child in getattr(element, "_children", {}).values():
        found.extend(_children(child))
    return found


def localise(root_element: Any) -> None:
    """Point every folium element's JS/CSS at the service's own copies."""
    for element in _children(root_element):
        for attr in ("default_js", "default_css"):
            resources = getattr(element, attr, None)
            if not resources:
                continue
            local = []
            for name, url in resources:
                if name in VENDOR_FILES:
                    local.append((name, f"{URL_PREFIX}/{VENDOR_FILES[name]}"))
                elif name not in UNUSED:
                    raise RuntimeError(
                        f"folium element {type(element).__name__} wants {name} from {url}; "
                        "add it to maps/assets (package.json and VENDOR_FILES) first."
                    )
            setattr(element, attr, local)


_SCRIPT_LINK = re.compile(r'<script src="' + re.escape(URL_PREFIX) + r'/([^"]+)"></script>')
_CSS_LINK = re.compile(r'<link rel="stylesheet" href="' + re.escape(URL_PREFIX) + r'/([^"]+)"/>')
_CSS_URL = re.compile(r"url\((images/[a-z0-9\-]+\.png)\)")


def inline_assets(html: str, root: Path) -> str:
    """Embed the vendor files in the page itself, for a standalone file (case documents)."""

    def script(match: re.Match[str]) -> str:
        code = (root / match.group(1)).read_text(encoding="utf-8")
        return "<script>" + code.replace("</script", "<\\/script") + "</script>"

    def css(match: re.Match[str]) -> str:
        path = root / match.group(1)
        sheet = path.read_text(encoding="utf-8")

        def data_uri(m: re.Match[str]) -> str:
            png = (path.parent / m.group(1)).read_bytes()
            return f"url(data:image/png;base64,{base64.b64encode(png).decode()})"

        return "<style>" + _CSS_URL.sub(data_uri, sheet) + "</style>"

    html = _SCRIPT_LINK.sub(script, html)
    html = _CSS_LINK.sub(css, html)
    if URL_PREFIX in html:
        raise RuntimeError("a vendor asset was left as a link in a standalone map")
    return html
