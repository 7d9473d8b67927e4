"""CQL2 filters (OGC API – Features Part 3) turned into SQL with every value bound.

pygeofilter (maintained by the GeoPython community, used by pygeoapi and tipg) parses CQL2
text and CQL2 JSON into a syntax tree; its SQLAlchemy backend turns the tree into a
SQLAlchemy expression whose values are bound parameters. What we add: the field mapping
(each queryable a typed expression over the feature's JSON attributes) and geometry literals
read in the filter's CRS (``filter-crs``, CRS84 by default) and transformed into the storage
CRS, so a polygon drawn in EPSG:25833 and one in lon/lat select the same features.
"""

from __future__ import annotations

import json
from typing import Any

from geoalchemy2 import Geometry
from pygeofilter import ast, values
from pygeofilter.backends.evaluator import handle
from pygeofilter.backends.sqlalchemy.evaluate import SQLAlchemyFilterEvaluator
from sqlalchemy import Float, Integer, Text, cast, column, func, literal, table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from core.errors import BadRequest
from layers.crs import OgcCrs

FEATURE = table(
    "feature",
    column("version_id", Integer),
    column("fid", Integer),
    column("attrs", JSONB),
    column("props", JSONB),
    column("geom", Geometry),
    schema="geoservice",
)
CASTS = {"int": Integer, "float": Float}
FILTER_LANGS = ("cql2-text", "cql2-json")
EXAMPLE = "klasse_navn = 'Myr' AND areal_m2 > 1000"


def property_expression(name: str, kind: str | None) -> ColumnElement[Any]:
    """A property as SQL of its type: typed attributes first, then the file's other fields."""
    text_value = func.coalesce(
        FEATURE.c.attrs.op("->>", return_type=Text)(name),
        FEATURE.c.props.op("->>", return_type=Text)(name),
        type_=Text,
    )
    sql_type = CASTS.get(kind or "")
    return cast(text_value, sql_type) if sql_type is not None else text_value


def field_mapping(types: dict[str, str | None]) -> dict[str, Any]:
    """The queryables by name (``geometry`` is the feature's geometry)."""
    fields: dict[str, Any] = {name: property_expression(name, kind) for name, kind in types.items()}
    fields["geometry"] = FEATURE.c.geom
    return fields


class _Evaluator(SQLAlchemyFilterEvaluator):  # type: ignore[misc]
    """pygeofilter's SQLAlchemy evaluator with geometry literals in the filter's CRS."""

    def __init__(self, fields: dict[str, Any], crs: OgcCrs, storage_srid: int) -> None:
        super().__init__(fields, undefined_as_null=False)
        self.crs = crs
        self.storage_srid = storage_srid

    def _geometry(self, geojson: dict[str, Any]) -> Any:
        geom = func.ST_GeomFromGeoJSON(literal(json.dumps(geojson)))
        if self.crs.lat_first:  # EPSG:4326 as the standard writes it: latitude first
            geom = func.ST_FlipCoordinates(geom)
        return func.ST_Transform(func.ST_SetSRID(geom, self.crs.srid), self.storage_srid)

    @handle(values.Geometry)  # type: ignore[untyped-decorator]
    def geometry(self, node: Any) -> Any:
        return self._geometry(dict(node.__geo_interface__))

    @handle(values.Envelope)  # type: ignore[untyped-decorator]
    def envelope(self, node: Any) -> Any:
        x1, y1, x2, y2 = node.x1, node.y1, node.x2, node.y2
        ring = [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]
        return self._geometry({"type": "Polygon", "coordinates": [ring]})

    @handle(ast.Function)  # type: ignore[untyped-decorator]
    def function(self, node: Any, *arguments: Any) -> Any:
        # The CQL2 text parser reads a BBOX(...) literal as a function call.
        numbers = [a for a in arguments if isinstance(a, int | float)]
        if node.name.lower() == "bbox" and len(numbers) == len(arguments) in (4, 6):
            half = len(numbers) // 2
            x1, y1, x2, y2 = numbers[0], numbers[1], numbers[half], numbers[half + 1]
            ring = [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]
            return self._geometry({"type": "Polygon", "coordinates": [ring]})
        raise BadRequest(
            f"The filter calls {node.name}(), which this service does not offer.",
            code="invalid_filter",
        )

    @handle(ast.Attribute)  # type: ignore[untyped-decorator]
    def attribute(self, node: Any) -> Any:
        if node.name not in self.field_mapping:
            known = ", ".join(sorted(self.field_mapping))
            raise BadRequest(
                f"The filter names {node.name!r}, which this collection does not have. "
                f"Properties you can filter on: {known} (see .../queryables).",
                code="invalid_filter",
            )
        return self.field_mapping[node.name]


def _bbox_as_polygon(node: Any) -> Any:
    """CQL2 JSON's ``{"bbox": [minx, miny, maxx, maxy]}`` as the polygon it means.

    pygeofilter 0.3 reads the four numbers in another order (x1, x2, y1, y2), so the box is
    handed to it as a GeoJSON polygon instead.
    """
    if isinstance(node, list):
        return [_bbox_as_polygon(n) for n in node]
    if not isinstance(node, dict):
        return node
    box = node.get("bbox")
    if set(node) == {"bbox"} and isinstance(box, list) and len(box) in (4, 6):
        half = len(box) // 2
        x1, y1, x2, y2 = box[0], box[1], box[half], box[half + 1]
        ring = [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]
        return {"type": "Polygon", "coordinates": [ring]}
    return {k: _bbox_as_polygon(v) for k, v in node.items()}


def parse_filter(text: str, lang: str | None) -> Any:
    """The syntax tree of a CQL2 filter; 400 with an example when it cannot be read."""
    lang = lang or ("cql2-json" if text.lstrip().startswith("{") else "cql2-text")
    if lang == "cql-text":  # an earlier draft's name, still sent by GDAL's OAPIF driver
        lang = "cql2-text"
    if lang not in FILTER_LANGS:
        raise BadRequest(
            f"filter-lang {lang!r} is not supported; use cql2-text or cql2-json.",
            code="invalid_filter_lang",
        )
    try:
        if lang == "cql2-json":
            from pygeofilter.parsers.cql2_json import parse as parse_json

            return parse_json(_bbox_as_polygon(json.loads(text)))
        from pygeofilter.parsers.cql2_text import parse as parse_text

        return parse_text(text)
    except Exception as exc:  # lark and json errors: the filter is not valid CQL2
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BadRequest(
            f"The filter is not valid {lang}: {first}. Example: filter={EXAMPLE}",
            code="invalid_filter",
        ) from exc


def to_sql(
    tree: Any, types: dict[str, str | None], crs: OgcCrs, storage_srid: int
) -> ColumnElement[bool]:
    """The filter as a SQLAlchemy condition over ``geoservice.feature``, values bound."""
    try:
        condition = _Evaluator(field_mapping(types), crs, storage_srid).evaluate(tree)
    except BadRequest:
        raise
    except NotImplementedError as exc:
        raise BadRequest(
            f"The filter uses something this service does not support ({exc or 'an operator'}); "
            "comparisons, AND/OR/NOT, LIKE, IN, BETWEEN, IS NULL and the S_ spatial "
            "operators work.",
            code="invalid_filter",
        ) from exc
    if not isinstance(condition, ColumnElement):
        raise BadRequest(
            "The filter is not a condition (it must compare something).", code="invalid_filter"
        )
    return condition
