"""A footprint as sent: the polygons of any GeoJSON, unioned, reprojected, repaired and
checked to lie in Norway (in PostGIS)."""

from __future__ import annotations

import json
from typing import Any

import shapely.geometry
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from core.errors import InvalidInput
from layers.crs import SourceCrs, inside_norway, likely_cause


def footprint_geometries(geojson: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """The polygon geometries of a GeoJSON geometry, Feature or FeatureCollection."""
    kind = geojson.get("type") if isinstance(geojson, dict) else None
    if kind == "FeatureCollection":
        features = geojson.get("features") or []
        geoms = [g for f in features for g in footprint_geometries(f, label)]
    elif kind == "Feature":
        geoms = footprint_geometries(geojson.get("geometry") or {}, label)
    elif kind in ("Polygon", "MultiPolygon"):
        geoms = [geojson]
    else:
        raise InvalidInput(
            f"The {label} footprint must be a Polygon or MultiPolygon (as a GeoJSON geometry, "
            f"Feature or FeatureCollection); got {kind or 'nothing'}.",
            code="footprint_not_polygon",
        )
    if not geoms:
        raise InvalidInput(f"The {label} footprint has no geometry.", code="footprint_empty")
    return geoms


NAME_FIELDS = ("navn", "name", "plannavn", "PLANNAVN", "Navn", "NAVN")


def footprint_name(geojson: dict[str, Any]) -> str | None:
    """The name a file gives its footprint (``navn``, ``name`` …): the one name all its
    features share; None when they have none or several."""
    kind = geojson.get("type") if isinstance(geojson, dict) else None
    features = (
        geojson.get("features") or []
        if kind == "FeatureCollection"
        else [geojson]
        if kind == "Feature"
        else []
    )
    names = set()
    for feature in features:
        props = feature.get("properties") or {} if isinstance(feature, dict) else {}
        value = next((props[f] for f in NAME_FIELDS if props.get(f)), None)
        if value is not None:
            names.add(str(value).strip()[:200])
    return names.pop() if len(names) == 1 else None


def _outside(label: str, geoms: list[dict[str, Any]], srid_in: int) -> InvalidInput:
    """The refusal of a footprint outside Norway, saying which usual mix-up (degrees, another
    UTM zone, swapped axes) would put it there, as an upload's does."""
    try:
        points = [shapely.geometry.shape(g).representative_point() for g in geoms]
        cause = likely_cause(
            [p.x for p in points], [p.y for p in points], SourceCrs(srid_in, f"EPSG:{srid_in}", "")
        )
    except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError):
        cause = ""  # coordinates shapely cannot read: PostGIS said what it could
    return InvalidInput(
        f"The {label} footprint does not lie in Norway when read as EPSG:{srid_in}. "
        + (f"{cause} " if cause else "")
        + "GeoJSON is longitude/latitude (EPSG:4326) unless you say otherwise with crs "
        "(--crs on the command line).",
        code="outside_norway",
    )


def prepare_footprint(
    conn: Connection, geoms: list[dict[str, Any]], srid_in: int, srid: int, label: str
) -> dict[str, Any]:
    """Union, reproject and repair the footprint in PostGIS; refuse it outside Norway."""
    try:
        row = conn.execute(
            text(
                """
                WITH raw AS (
                    SELECT ST_Union(ST_SetSRID(ST_GeomFromGeoJSON(g), :src)) AS g0
                      FROM unnest(CAST(:geoms AS text[])) AS g
                ), fixed AS (
                    SELECT ST_IsValid(g0) AS valid,
                           ST_Multi(ST_CollectionExtract(ST_MakeValid(
                               ST_Transform(g0, :srid)), 3)) AS g
                      FROM raw
                )
                SELECT valid, ST_AsBinary(g) AS wkb, ST_Area(g) AS area,
                       ST_X(ST_PointOnSurface(g)) AS x, ST_Y(ST_PointOnSurface(g)) AS y
                  FROM fixed
                """
            ),
            {
                "geoms": [json.dumps(g) for g in geoms],
                "src": srid_in,
                "srid": srid,
            },
        ).one()
    except DBAPIError as exc:
        said = str(exc.orig).splitlines()[0]
        if "transform" in said:  # coordinates the CRS cannot hold: metres sent as degrees
            raise _outside(label, geoms, srid_in) from exc
        raise InvalidInput(
            f"The {label} footprint could not be read as GeoJSON in EPSG:{srid_in}: {said}",
            code="bad_footprint",
        ) from exc
    if row.area is None or row.area <= 0:
        raise InvalidInput(f"The {label} footprint has no area.", code="footprint_empty")
    if row.x is None or not inside_norway([row.x], [row.y], srid)[0]:
        raise _outside(label, geoms, srid_in)
    return {"wkb": bytes(row.wkb), "area_m2": float(row.area), "repaired": not row.valid}
