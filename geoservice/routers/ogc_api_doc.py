"""The OGC API's own OpenAPI document: one items path per collection with its queryables as
query parameters, as GDAL's OAPIF driver and QGIS read them to filter on the server.

FastAPI's ``/openapi.json`` describes the whole service with ``{collection_id}`` as a
parameter, so a client cannot see what each collection can be filtered on; this document,
linked as the landing page's ``service-desc``, spells it out per collection.
"""

from __future__ import annotations

from typing import Any

from core import __version__

JSON_TYPES = {"int": "integer", "float": "number", "text": "string"}
# cql-text: the name an earlier draft used and that GDAL still asks for; it means cql2-text.
FILTER_LANGS = ["cql2-text", "cql2-json", "cql-text"]


def _parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
        "style": "form",
        "explode": False,
    }


COMMON = [
    _parameter("limit", {"type": "integer", "minimum": 1, "default": 10}, "Features per page"),
    _parameter("offset", {"type": "integer", "minimum": 0, "default": 0}, "Features to skip"),
    _parameter(
        "bbox",
        {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "minx,miny,maxx,maxy in bbox-crs (CRS84 by default)",
    ),
    _parameter("bbox-crs", {"type": "string", "format": "uri"}, "CRS of bbox"),
    _parameter("crs", {"type": "string", "format": "uri"}, "CRS of the response"),
    _parameter("filter", {"type": "string"}, "CQL2 filter"),
    _parameter("filter-lang", {"type": "string", "enum": FILTER_LANGS}, "Language of filter"),
    _parameter("filter-crs", {"type": "string", "format": "uri"}, "CRS of filter geometries"),
    _parameter("sortby", {"type": "string"}, "Properties to sort by; - for descending"),
    _parameter("properties", {"type": "string"}, "Properties to return"),
    _parameter("f", {"type": "string", "enum": ["json", "html"]}, "Format"),
]
ERRORS = {
    "400": {"description": "A parameter is wrong; the body says which and how to fix it"},
    "404": {"description": "No such collection or feature"},
}


def ogc_api_document(ogc_url: str, collections: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenAPI 3.0 for ``/ogc``: landing page, conformance, collections, and for each
    collection its items (every queryable a parameter) and single items."""
    paths: dict[str, Any] = {
        "/": {"get": _get("Landing page", "application/json")},
        "/conformance": {"get": _get("Conformance classes", "application/json")},
        "/collections": {"get": _get("Collections", "application/json")},
    }
    for collection in collections:
        slug = collection["slug"]
        queryables = [
            _parameter(name, {"type": JSON_TYPES.get(kind or "", "string")}, f"{name} equals")
            for name, kind in collection["types"].items()
        ]
        paths[f"/collections/{slug}"] = {
            "get": _get(f"{collection['name']}: the collection", "application/json")
        }
        paths[f"/collections/{slug}/queryables"] = {
            "get": _get(f"{collection['name']}: what to filter on", "application/schema+json")
        }
        items = _get(f"{collection['name']}: features", "application/geo+json")
        items["parameters"] = COMMON + queryables
        paths[f"/collections/{slug}/items"] = {"get": items}
        item = _get(f"{collection['name']}: one feature", "application/geo+json")
        item["parameters"] = [
            {
                "name": "featureId",
                "in": "path",
                "required": True,
                "schema": {"type": "integer"},
                "description": "Feature id",
            }
        ]
        paths[f"/collections/{slug}/items/{{featureId}}"] = {"get": item}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "geoservice — OGC API Features and Tiles",
            "version": __version__,
            "description": "Layers of the carbon-aware land-use planning service.",
        },
        "servers": [{"url": ogc_url}],
        "paths": paths,
    }


def _get(summary: str, media_type: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "responses": {
            "200": {"description": summary, "content": {media_type: {"schema": {}}}},
            **ERRORS,
        },
    }
