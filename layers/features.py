"""Feature queries for OGC API Features: paging, bbox in any offered CRS, property filters,
CQL2 conditions, sorting and a choice of properties, composed with SQLAlchemy Core (every
value bound)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Engine, Text, cast, func, literal, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from core.errors import InvalidInput, NotFound
from layers.cql import FEATURE, property_expression
from layers.crs import OgcCrs


class CountCache:
    """numberMatched of a filter on a layer version, kept: a version never changes once
    published, so neither does the count. A client paging through a filtered collection
    (QGIS asks page after page with the same filter) pays for the count once."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()

    def get(self, key: tuple[str, str]) -> int | None:
        """The kept count, or None."""
        found = self._counts.get(key)
        if found is not None:
            self._counts.move_to_end(key)
        return found

    def put(self, key: tuple[str, str], count: int) -> None:
        """Keep a count (the least recently used goes when full)."""
        self._counts[key] = count
        if len(self._counts) > self.size:
            self._counts.popitem(last=False)


MATCHED = CountCache()


def _count_key(engine: AsyncEngine, statement: Any) -> tuple[str, str]:
    """The database, the count's SQL and its bound values (the version id among them)."""
    compiled = statement.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    where = engine.url.render_as_string(hide_password=True)
    return f"{where}\n{compiled}", repr(sorted(compiled.params.items()))


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
    # A CQL2 condition (layers.cql.to_sql), the sort keys (name, descending) and the
    # properties to return (None: all), with the types of the collection's properties.
    filter: ColumnElement[bool] | None = None
    sortby: tuple[tuple[str, bool], ...] = ()
    select: tuple[str, ...] | None = None
    types: dict[str, str | None] = field(default_factory=dict)


def _geometry(crs: OgcCrs) -> Any:
    geom = func.ST_Transform(FEATURE.c.geom, crs.srid)
    if crs.lat_first:
        geom = func.ST_FlipCoordinates(geom)
    return cast(func.ST_AsGeoJSON(geom, 8 if crs.geographic else 3, 0), JSON)


def _conditions(q: FeatureQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [FEATURE.c.version_id == q.version_id]
    if q.bbox is not None:
        x0, y0, x1, y1 = q.bbox
        crs = q.bbox_crs
        if crs is None:
            raise ValueError("a bbox needs its CRS")
        if crs.lat_first:  # bbox given as lat,lon
            x0, y0, x1, y1 = y0, x0, y1, x1
        if x0 > x1 or y0 > y1:
            raise InvalidInput(
                "bbox must be minx,miny,maxx,maxy with min <= max.", code="invalid_bbox"
            )
        # Densify before reprojecting so the box's edges stay where the client drew them.
        box = func.ST_Segmentize(
            func.ST_MakeEnvelope(x0, y0, x1, y1, crs.srid), 0.01 if crs.geographic else 1000.0
        )
        conditions.append(
            func.ST_Intersects(FEATURE.c.geom, func.ST_Transform(box, q.storage_srid))
        )
    for key, value in sorted(q.properties.items()):
        conditions.append(property_expression(key, None) == value)
    if q.filter is not None:
        conditions.append(q.filter)
    return conditions


def _properties(q: FeatureQuery) -> Any:
    merged = FEATURE.c.attrs.op("||")(FEATURE.c.props)
    if q.select is None:
        return merged
    pairs: list[Any] = []
    for name in q.select:
        pairs += [cast(literal(name), Text), merged.op("->")(cast(literal(name), Text))]
    return func.jsonb_build_object(*pairs)


async def query_features(
    engine: AsyncEngine, q: FeatureQuery, total_hint: int
) -> tuple[str, int, int]:
    """One page of features as a GeoJSON array, how many it holds, and how many matched
    (the stored count when nothing filters).

    PostgreSQL writes the array: geometry and properties go from the database to the client
    as text, never parsed into Python objects and serialised again.
    """
    conditions = _conditions(q)
    ordering = [
        property_expression(name, q.types.get(name)).desc().nulls_last()
        if descending
        else property_expression(name, q.types.get(name)).asc().nulls_last()
        for name, descending in q.sortby
    ] + [FEATURE.c.fid]
    page = (
        select(
            FEATURE.c.fid,
            _properties(q).label("properties"),
            _geometry(q.out_crs).label("geometry"),
            func.row_number().over(order_by=ordering).label("n"),
        )
        .where(*conditions)
        .order_by(*ordering)
        .limit(q.limit)
        .offset(q.offset)
        .subquery("page")
    )
    feature = func.json_build_object(
        cast(literal("type"), Text),
        cast(literal("Feature"), Text),
        cast(literal("id"), Text),
        page.c.fid,
        cast(literal("geometry"), Text),
        page.c.geometry,
        cast(literal("properties"), Text),
        page.c.properties,
    )
    array = func.coalesce(
        func.json_agg(aggregate_order_by(feature, page.c.n)), cast(literal("[]"), JSON)
    )
    async with engine.connect() as conn:
        features, returned = (
            await conn.execute(select(cast(array, Text), func.count()).select_from(page))
        ).one()
        if q.bbox is None and not q.properties and q.filter is None:
            matched = total_hint
        else:
            counting = select(func.count()).select_from(FEATURE).where(*conditions)
            key = _count_key(engine, counting)
            found = MATCHED.get(key)
            if found is None:
                found = int((await conn.execute(counting)).scalar_one())
                MATCHED.put(key, found)
            matched = found
    return str(features), int(returned), matched


async def get_feature(engine: AsyncEngine, version_id: int, fid: int, out_crs: OgcCrs) -> Any:
    """One feature by id, or NotFound."""
    async with engine.connect() as conn:
        statement = select(
            FEATURE.c.fid,
            FEATURE.c.attrs.op("||")(FEATURE.c.props).label("properties"),
            _geometry(out_crs).label("geometry"),
        ).where(FEATURE.c.version_id == version_id, FEATURE.c.fid == fid)
        row = (await conn.execute(statement)).first()
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
