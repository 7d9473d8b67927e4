"""Is a file what its name says it is? Checked from its first bytes before GDAL sees it.

GDAL chooses a driver from the content; with only our formats' drivers registered
(``layers.gdal_env``), each check below makes sure that the one driver that matches the
file's ending is also the only one that can claim its content.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import InvalidInput
from layers.sosi import looks_like_sosi

HEAD_BYTES = 65536
_GEOJSON_TYPE = re.compile(
    rb'"type"\s*:\s*"(FeatureCollection|Feature|Point|MultiPoint|LineString|MultiLineString|'
    rb'Polygon|MultiPolygon|GeometryCollection)"'
)
_GML_NAMESPACE = re.compile(rb"http://www\.opengis\.net/gml")
_XML_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_SQLITE = b"SQLite format 3\x00"
_GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
_SHP = b"\x00\x00\x27\x0a"

FORMAT_NAMES = {
    ".json": "GeoJSON",
    ".geojson": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".fgb": "FlatGeobuf",
    ".gml": "GML",
    ".sos": "SOSI",
    ".csv": "CSV",
    ".zip": "zip",
    ".shp": "Shapefile (.shp)",
    ".shx": "Shapefile index (.shx)",
    ".tif": "GeoTIFF",
    ".tiff": "GeoTIFF",
}


def _text_start(head: bytes) -> bytes:
    """The head without a byte-order mark and leading white space."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.lstrip()


def _xml_root(text: bytes) -> bytes | None:
    """The root element's local name, skipping the declaration, comments and doctype."""
    pos = 0
    while True:
        start = text.find(b"<", pos)
        if start < 0:
            return None
        if text.startswith((b"<?", b"<!"), start):
            end = text.find(b">", start)
            if end < 0:
                return None
            pos = end + 1
            continue
        match = _XML_ROOT.match(text, start)
        return match.group(1) if match else None


def detect(head: bytes) -> str:
    """What the first bytes look like: a short description for messages."""
    text = _text_start(head)
    if head.startswith(_SQLITE):
        return "an SQLite database"
    if head.startswith(b"fgb"):
        return "FlatGeobuf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a zip archive"
    if head.startswith(_TIFF):
        return "a TIFF image"
    if head.startswith(_SHP):
        return "a Shapefile"
    if looks_like_sosi(head):
        return "a SOSI file"
    if text.startswith((b"{", b"[")):
        if b"gdal_streamed_alg" in text:
            return "a GDAL pipeline (GDALG) file"
        return "JSON"
    if text.startswith(b"<"):
        root = _xml_root(text)
        return f"XML with root element <{root.decode('ascii', 'replace')}>" if root else "XML"
    if b"\x00" in head:
        return "binary data"
    return "text"


def _matches(suffix: str, head: bytes) -> bool:
    text = _text_start(head)
    if suffix in (".json", ".geojson"):
        return (
            text.startswith(b"{")
            and _GEOJSON_TYPE.search(text) is not None
            and b"gdal_streamed_alg" not in text
        )
    if suffix == ".gpkg":
        return head.startswith(_SQLITE) and head[68:72] in _GPKG_IDS
    if suffix == ".fgb":
        return head.startswith(b"fgb\x03")
    if suffix == ".gml":
        root = _xml_root(text) if text.startswith(b"<") else None
        return (
            root is not None
            and not root.startswith(b"OGR")
            and _GML_NAMESPACE.search(text) is not None
        )
    if suffix == ".sos":
        return looks_like_sosi(head)
    if suffix == ".csv":
        return detect(head) == "text"
    if suffix == ".zip":
        return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))
    if suffix in (".shp", ".shx"):
        return head.startswith(_SHP)
    if suffix in (".tif", ".tiff"):
        return head.startswith(_TIFF)
    return False


def check_signature(path: Path, suffix: str, *, display_name: str | None = None) -> None:
    """Refuse a file whose content is not the format its ending claims (422, saying what
    the content looks like and how to fix it)."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if _matches(suffix, head):
        return
    shown = display_name or path.name
    wanted = FORMAT_NAMES.get(suffix, suffix)
    found = detect(head)
    hint = {
        ".json": 'a GeoJSON FeatureCollection ({"type": "FeatureCollection", ...})',
        ".geojson": 'a GeoJSON FeatureCollection ({"type": "FeatureCollection", ...})',
        ".gml": "GML (XML using the namespace http://www.opengis.net/gml)",
        ".gpkg": "a GeoPackage written by a GIS (QGIS, ArcGIS, ogr2ogr)",
        ".csv": "plain CSV text with a WKT geometry column",
        ".sos": "a SOSI text file starting with .HODE",
    }.get(suffix, wanted)
    raise InvalidInput(
        f"{shown} is named as {wanted} but its content is {found}. Only {hint} is accepted "
        f"with this ending; export the data as {wanted} from your GIS, or give the file the "
        "ending of its real format.",
        code="format_mismatch",
    )
