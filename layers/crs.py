"""Coordinate reference systems: which EPSG code a file is in, and whether data lies in Norway.

Reprojection itself happens in PostGIS (``ST_Transform``) during ingest; this module only
identifies CRSs and explains extent failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from core.errors import BadRequest, InvalidInput

EXTENT_WKT = files("layers") / "data" / "norway_extent_25833.wkt"
# CRSs Norwegian data commonly comes in; tried when a file lands outside Norway.
LIKELY_SRIDS = (25833, 25832, 25835, 25834, 25831, 4326, 4258, 3857, 32632, 32633, 32635)


@dataclass(frozen=True)
class SourceCrs:
    """The CRS of an upload: its EPSG code and how it was found."""

    srid: int
    label: str
    origin: str  # "file" or "request"


_EPSG_FORMS = (
    re.compile(r"^(?:EPSG:)?(\d{4,6})$", re.IGNORECASE),
    re.compile(r"^urn:ogc:def:crs:EPSG:[\d.]*:(\d{4,6})$", re.IGNORECASE),
    re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d{4,6})$", re.IGNORECASE),
)
_CRS84_FORMS = (
    "ogc:crs84",
    "crs84",
    "urn:ogc:def:crs:ogc:1.3:crs84",
    "http://www.opengis.net/def/crs/ogc/1.3/crs84",
    "https://www.opengis.net/def/crs/ogc/1.3/crs84",
)


def parse_crs(text: str) -> CRS:
    """A CRS someone typed: ``EPSG:25833``, ``25833``, an EPSG URN or OGC URL, or CRS84.

    Only codes are accepted: a PROJ string or a path could make PROJ open files, and a
    request's words never reach a file name.
    """
    value = text.strip()
    code = next((m.group(1) for f in _EPSG_FORMS if (m := f.match(value))), None)
    try:
        if code is not None:
            return CRS.from_epsg(int(code))
        if value.casefold() in _CRS84_FORMS:
            return CRS.from_epsg(4326)  # PostGIS keeps x = longitude for 4326 either way
    except CRSError:
        pass
    raise InvalidInput(
        f"{text[:80]!r} is not a coordinate reference system I recognise; write it as an EPSG "
        "code, e.g. EPSG:25833 (EUREF89 UTM 33) or EPSG:25832 (UTM 32).",
        code="bad_crs",
    )


def parse_file_crs(definition: str) -> CRS:
    """The CRS a file declares (WKT or PROJJSON as GDAL reports it)."""
    try:
        return CRS.from_user_input(definition)
    except CRSError as exc:
        raise InvalidInput(
            "The file's coordinate reference system could not be understood; say which one "
            "the data is in, e.g. crs=EPSG:25833 (or --crs EPSG:25833).",
            code="bad_crs",
        ) from exc


def epsg_of(crs: CRS, described_as: str) -> int:
    """The EPSG code of a CRS, or a clear error when it has none we can use."""
    code = crs.to_epsg(min_confidence=70)
    if code is None:
        raise InvalidInput(
            f"The coordinate reference system {described_as} ({crs.name}) has no EPSG code I "
            "can match. Name the EPSG code the data is in (e.g. crs=EPSG:25833).",
            code="bad_crs",
        )
    return int(code)


def resolve_source_crs(file_crs: str | None, requested: str | None) -> SourceCrs:
    """The request's CRS wins (it corrects a wrong label); otherwise the file's; else 422."""
    if requested:
        crs = parse_crs(requested)
        return SourceCrs(epsg_of(crs, requested), f"EPSG:{epsg_of(crs, requested)}", "request")
    if not file_crs:
        raise InvalidInput(
            "The file does not say which coordinate reference system it uses (no .prj file or "
            "CRS definition). Tell me which one, e.g. crs=EPSG:25833 (or --crs EPSG:25833).",
            code="missing_crs",
        )
    crs = parse_file_crs(file_crs)
    srid = epsg_of(crs, "of the file")
    return SourceCrs(srid, f"EPSG:{srid}", "file")


@cache
def norway_extent_wkt() -> str:
    """Norway (mainland with coastal waters, Svalbard, Jan Mayen) in EPSG:25833."""
    return EXTENT_WKT.read_text(encoding="utf-8").strip()


@cache
def _norway() -> Any:
    extent = shapely.from_wkt(norway_extent_wkt())
    shapely.prepare(extent)
    return extent


@cache
def _to_25833(srid: int) -> Transformer:
    return Transformer.from_crs(srid, 25833, always_xy=True)


def inside_norway(x: Any, y: Any, srid: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which points lie in Norway: the one test behind every extent check (uploads, rasters,
    footprints, and the guess at a mix-up when they fail)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        tx, ty = _to_25833(srid).transform(xs, ys, errcheck=False)
    tx, ty = np.asarray(tx, dtype=float), np.asarray(ty, dtype=float)
    finite = np.isfinite(tx) & np.isfinite(ty)
    inside = np.zeros(xs.shape, dtype=bool)
    inside[finite] = shapely.intersects_xy(_norway(), tx[finite], ty[finite])
    return inside


def likely_cause(x: Any, y: Any, source: SourceCrs) -> str:
    """Points that are not in Norway as labelled: which usual mix-up (another UTM zone,
    degrees, swapped axes) would put them there, as a sentence for the error message."""
    candidates: list[tuple[str, int, bool]] = [(source.label, source.srid, True)]
    candidates += [(f"EPSG:{s}", s, False) for s in LIKELY_SRIDS if s != source.srid]
    candidates += [(f"EPSG:{s}", s, True) for s in LIKELY_SRIDS if s != source.srid]
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    for label, srid, swap in candidates:
        if not len(xs):
            break
        inside = inside_norway(ys, xs, srid) if swap else inside_norway(xs, ys, srid)
        if inside.sum() < 0.95 * len(xs):
            continue
        if swap and srid == source.srid:
            return (
                "With x and y swapped it lies in Norway: the axes are probably swapped "
                "(northing written before easting, or latitude before longitude)."
            )
        if srid in (4326, 4258) and not swap:
            return (
                f"Read as longitude/latitude degrees ({label}) it lies in Norway: the "
                f"coordinates are probably degrees, not {source.label} metres. "
                f"Upload again with crs={label}."
            )
        if swap:
            return f"Read as {label} with the axes swapped it lies in Norway."
        return (
            f"Read as {label} it lies in Norway: the file is probably in {label} but "
            f"labelled {source.label}. Upload again with crs={label}."
        )
    if source.srid in (4326, 4258):
        # Degrees made from UTM coordinates of one zone as though they were another's: the
        # data sits a zone's width (6° of longitude) away, often at sea.
        for made_as, really in ((25832, 25833), (25833, 25832), (25833, 25835), (25835, 25833)):
            ux, uy = Transformer.from_crs(source.srid, made_as, always_xy=True).transform(xs, ys)
            if len(xs) and inside_norway(ux, uy, really).sum() >= 0.95 * len(xs):
                return (
                    f"Its degrees look converted from EPSG:{really} (UTM) coordinates as "
                    f"though they were EPSG:{made_as}: read that way it lies in Norway. Ask "
                    "the supplier to convert the data again from the right UTM zone."
                )
    return "No common Norwegian CRS places it in Norway either; check the source of the file."


def kommune_cause(
    x: Any, y: Any, source: SourceCrs, kommune_wkb: bytes, srid: int, name: str
) -> str:
    """Points not in the kommune they name: which usual CRS would put them there."""
    area = shapely.from_wkb(kommune_wkb)
    shapely.prepare(area)
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    for alt in LIKELY_SRIDS:
        if alt == source.srid or not len(xs):
            continue
        with np.errstate(invalid="ignore"):
            tx, ty = Transformer.from_crs(alt, srid, always_xy=True).transform(
                xs, ys, errcheck=False
            )
        tx, ty = np.asarray(tx, dtype=float), np.asarray(ty, dtype=float)
        finite = np.isfinite(tx) & np.isfinite(ty)
        hits = shapely.intersects_xy(area, tx[finite], ty[finite]).sum()
        if hits >= 0.95 * len(xs):
            return (
                f"Read as EPSG:{alt} it lies in {name}: the file is probably in EPSG:{alt} "
                f"but labelled {source.label}. Upload again with crs=EPSG:{alt}."
            )
    return "No common Norwegian CRS puts it there either; check the kommunenummer and the CRS."


def reproject_geojson(geometry: dict[str, Any], from_srid: int, to_srid: int) -> dict[str, Any]:
    """A GeoJSON geometry in another CRS (x/y order as GIS software writes it)."""
    if from_srid == to_srid:
        return geometry
    transformer = Transformer.from_crs(from_srid, to_srid, always_xy=True)
    shape = shapely.geometry.shape(geometry)
    moved = shapely.transform(
        shape, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )
    return dict(shapely.geometry.mapping(moved))


# --- OGC API CRS identifiers (Features Part 2) ------------------------------------------------
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
OGC_SRIDS = (4326, 25833, 25832, 25835, 4258)
# EPSG:4326 and 4258 are latitude-first by definition; CRS84 is longitude-first.
LAT_FIRST = {4326, 4258}


@dataclass(frozen=True)
class OgcCrs:
    """A CRS as OGC API Features names it: the URI, the SRID and the axis order."""

    uri: str
    srid: int
    lat_first: bool

    @property
    def geographic(self) -> bool:
        """Degrees rather than metres (decides how many decimals to write)."""
        return self.srid in (4326, 4258)


def ogc_crs_list(storage_srid: int) -> list[str]:
    """The CRS URIs every collection offers."""
    srids = [storage_srid, *[s for s in OGC_SRIDS if s != storage_srid]]
    return [CRS84, *[EPSG_URI.format(s) for s in srids]]


def parse_ogc_crs(uri: str, storage_srid: int) -> OgcCrs:
    """Resolve a ``crs``/``bbox-crs`` parameter; only the advertised CRSs are accepted."""
    value = uri.strip()
    if value in (CRS84, "OGC:CRS84", "CRS84"):
        return OgcCrs(CRS84, 4326, lat_first=False)
    for srid in (storage_srid, *OGC_SRIDS):
        if value in (EPSG_URI.format(srid), f"EPSG:{srid}", f"urn:ogc:def:crs:EPSG::{srid}"):
            return OgcCrs(EPSG_URI.format(srid), srid, lat_first=srid in LAT_FIRST)
    raise BadRequest(
        f"CRS {uri!r} is not offered. Use one of: {', '.join(ogc_crs_list(storage_srid))}.",
        code="unsupported_crs",
    )
