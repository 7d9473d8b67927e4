"""Feature queries for OGC API Features: paging, bbox in any offered CRS, property filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from core.errors import InvalidInput, NotFound
from layers.crs import OgcCrs


@dataclass(frozen=True)
class FeatureQuery:
    """What a client asked for; every value is bound as a parameter, never formatted in."""

    version_id: int
    out_crs: OgcCrs
    storage_srid: int
    limit: int = 10
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: OgcCrs | None = None
    properties: dict[str, str] = field(default_factory=dict)


def _geometry_sql(crs: OgcCrs) -> str:
    digits = 8 if crs.geographic else 3
    geom = "ST_Transform(geom, :out_srid)"
    if crs.lat_first:
        geom = f"ST_FlipCoordinates({geom})"
    return f"ST_AsGeoJSON({geom}, {digits}, 0)::json"  # 0: no crs member, no bbox


def _where(q: FeatureQuery, params: dict[str, Any]) -> str:
    clauses = ["version_id = :version_id"]
    params["version_id"] = q.version_id
    if q.bbox is not None:
        x0, y0, x1, y1 = q.bbox
        crs = q.bbox_crs
        assert crs is not None
        if crs.lat_first:  # bbox given as lat,lon
            x0, y0, x1, y1 = y0, x0, y1, x1
        if x0 > x1 or y0 > y1:
            raise InvalidInput(
                "bbox must be minx,miny,maxx,maxy with min <= max.", code="invalid_bbox"
            )
        params.update(x0=x0, y0=y0, x1=x1, y1=y1, bbox_srid=crs.srid, storage=q.storage_srid)
        # Densify before reprojecting so the box's edges stay where the client drew them.
        seg = 0.01 if crs.geographic else 1000.0
        params["seg"] = seg
        clauses.append(
            "ST_Intersects(geom, ST_Transform(ST_Segmentize("
            "ST_MakeEnvelope(:x0, :y0, :x1, :y1, :bbox_srid), :seg), :storage))"
        )
    for i, (key, value) in enumerate(sorted(q.properties.items())):
        params[f"pk{i}"] = key
        params[f"pv{i}"] = value
        clauses.append(f"coalesce(attrs->>:pk{i}, props->>:pk{i}) = :pv{i}")
    return " AND ".join(clauses)


def query_features(engine: Engine, q: FeatureQuery, total_hint: int) -> tuple[str, int, int]:
    """One page of features as a GeoJSON array, how many it holds, and how many matched
    (the stored count when nothing filters).

    PostgreSQL writes the array: geometry and properties go from the database to the client
    as text, never parsed into Python objects and serialised again.
    """
    params: dict[str, Any] = {"out_srid": q.out_crs.srid, "limit": q.limit, "offset": q.offset}
    where = _where(q, params)
    with engine.connect() as conn:
        features, returned = conn.execute(
            text(
                "SELECT coalesce(json_agg(json_build_object('type', 'Feature', 'id', fid, "
                "'geometry', geometry, 'properties', properties) ORDER BY fid), '[]')::text, "
                "count(*) "
                f"FROM (SELECT fid, attrs || props AS properties, "
                f"{_geometry_sql(q.out_crs)} AS geometry"
                f"  FROM geoservice.feature WHERE {where}"
                "  ORDER BY fid LIMIT :limit OFFSET :offset) page"
            ),
            params,
        ).one()
        if q.bbox is None and not q.properties:
            matched = total_hint
        else:
            matched = int(
                conn.execute(
                    text(f"SELECT count(*) FROM geoservice.feature WHERE {where}"), params
                ).scalar_one()
            )
    return str(features), int(returned), matched


def get_feature(engine: Engine, version_id: int, fid: int, out_crs: OgcCrs) -> Any:
    """One feature by id, or NotFound."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                f"SELECT fid, attrs || props AS properties, {_geometry_sql(out_crs)} AS geometry"
                "  FROM geoservice.feature WHERE version_id = :v AND fid = :fid"
            ),
            {"v": version_id, "fid": fid, "out_srid": out_crs.srid},
        ).first()
    if row is None:
        raise NotFound(
            f"Feature {fid} does not exist in this collection.", code="feature_not_found"
        )
    return row


def version_geojson(
    engine: Engine,
    version_id: int,
    *,
    max_features: int,
    digits: int = 6,
    fids: list[int] | None = None,
    simplify_m: float = 0.0,
) -> dict[str, Any]:
    """A whole (small) layer version as an RFC 7946 FeatureCollection, for inline maps.

    ``digits`` = 6 keeps about 0.1 m in WGS 84: enough for a map, a third of the bytes of
    full precision. ``simplify_m`` drops vertices closer than that to the line (topology
    kept), for display only.
    """
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT fid, attrs || props AS properties, "
                "ST_AsGeoJSON(ST_Transform(CASE WHEN :tol > 0 THEN "
                "ST_SimplifyPreserveTopology(geom, :tol) ELSE geom END, 4326), :digits)::json "
                "AS geometry FROM geoservice.feature WHERE version_id = :v "
                "AND (CAST(:fids AS bigint[]) IS NULL OR fid = ANY(:fids)) "
                "ORDER BY fid LIMIT :limit"
            ),
            {
                "v": version_id,
                "digits": digits,
                "limit": max_features + 1,
                "fids": fids,
                "tol": simplify_m,
            },
        ).all()
    if len(rows) > max_features:
        raise InvalidInput(
            f"This layer version has more than {max_features} features; draw it from vector "
            "tiles instead.",
            code="too_many_features",
        )
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": r.fid, "properties": r.properties, "geometry": r.geometry}
            for r in rows
        ],
    }
