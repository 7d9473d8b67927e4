"""OGC API – Features (Part 1 core + GeoJSON, Part 2 CRS) under ``/ogc``, one collection per layer.

QGIS and GDAL's OAPIF driver read it directly. Collections are the layers' active versions.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from core.errors import BadRequest, NotFound
from geoservice.dependencies import AsyncEngineDep, Offset, SettingsDep
from geoservice.map_options import map_options
from geoservice.routers.maps import html_page
from geoservice.routers.ogc_api_doc import ogc_api_document
from geoservice.routers.ogc_links import carry_token
from geoservice.routers.ogc_tiles import CONFORMANCE as TILES_CONFORMANCE
from layers import catalog, codelists
from layers.cql import parse_filter, to_sql
from layers.crs import CRS84, EPSG_URI, ogc_crs_list, parse_ogc_crs
from layers.features import FeatureQuery, get_feature, query_features
from layers.kinds import KINDS
from maps.ogc_pages import collection_page, collections_page, items_map, landing_page

CollectionId = Annotated[
    str,
    Path(
        max_length=80,
        description="The collection's id (a slug of the layer name); the layer number works too",
    ),
]
GEOJSON = "application/geo+json"
JSON = "application/json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
]
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SCHEMA_JSON = "application/schema+json"
JSON_TYPES = {"int": "integer", "float": "number", "text": "string"}


def queryables(layer: dict[str, Any], url: str) -> dict[str, Any]:
    """The properties a collection can be filtered on, as JSON Schema (Part 3): typed from
    the layer's kind, code lists as enums."""
    kind = KINDS.get(layer["kind"])
    attributes = {a.name: a for a in kind.attributes} if kind else {}
    properties: dict[str, Any] = {
        "geometry": {"format": "geometry-any", "title": "Geometry"},
    }
    for name in layer["property_names"] or []:
        attribute = attributes.get(name)
        schema: dict[str, Any] = {
            "title": name,
            "type": JSON_TYPES[attribute.type] if attribute else "string",
        }
        if attribute is not None and attribute.description:
            schema["description"] = attribute.description
        if attribute is not None and attribute.codelist:
            codes = codelists.load(attribute.codelist)
            schema["enum"] = list(codes.codes)
        properties[name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": layer["name"],
        "properties": properties,
        "additionalProperties": False,
    }


# Parameters that are not property filters (access_token: clients that cannot send headers).
RESERVED = {
    "limit",
    "offset",
    "bbox",
    "bbox-crs",
    "crs",
    "f",
    "datetime",
    "access_token",
    "filter",
    "filter-lang",
    "filter-crs",
    "sortby",
    "properties",
}
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000


LICENCES = {
    "cc by 4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "nlod 2.0": "https://data.norge.no/nlod/no/2.0",
    "nlod": "https://data.norge.no/nlod/no/2.0",
    "mit": "https://opensource.org/license/mit",
}


def licence_link(licence: str | None) -> dict[str, str] | None:
    """A ``license`` link for a licence the text names (CC BY 4.0, NLOD 2.0, …)."""
    if not licence:
        return None
    lowered = licence.lower()
    for name, href in LICENCES.items():
        if name in lowered:
            return {"href": href, "rel": "license", "type": "text/html", "title": licence}
    return None


FormatQuery = Annotated[
    str | None, Query(alias="f", description="json (default for programs) or html (for people)")
]


def wants_html(request: Request) -> bool:
    """``f=html``, or a browser asking for HTML first (``f=json`` wins over the header)."""
    f = request.query_params.get("f")
    if f is not None:
        if f not in ("json", "html"):
            raise BadRequest(f"f={f!r}: the formats are json and html.", code="invalid_format")
        return f == "html"
    accept = request.headers.get("accept", "")
    return accept.split(",")[0].strip().startswith("text/html")


def etag_for(version_id: int, request: Request) -> str:
    """A weak validator: a published version never changes, so the version and the query
    say everything about the content (the time stamp aside)."""
    query = "&".join(
        f"{k}={v}" for k, v in sorted(request.query_params.multi_items()) if k != "access_token"
    )
    digest = hashlib.sha256(f"{version_id}?{query}".encode()).hexdigest()[:20]
    return f'W/"{digest}"'


def not_modified(request: Request, etag: str) -> Response | None:
    """304 when the client already has this content."""
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"ETag": etag})
    return None


def _collection(request: Request, layer: dict[str, Any], storage_srid: int) -> dict[str, Any]:
    base = str(request.url_for("ogc_collection", collection_id=layer["slug"]))
    kind = KINDS.get(layer["kind"])
    links = [
        {"href": base, "rel": "self", "type": JSON, "title": layer["name"]},
        {"href": f"{base}/items", "rel": "items", "type": GEOJSON, "title": "Features"},
        {
            "href": f"{base}/queryables",
            "rel": QUERYABLES_REL,
            "type": SCHEMA_JSON,
            "title": "Properties to filter on",
        },
    ]
    links.append(
        {
            "href": f"{base}/tiles",
            "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
            "type": JSON,
            "title": "Vector tiles",
        }
    )
    licence = licence_link(layer["licence"])
    if licence is not None:
        links.append(licence)
    return {
        "id": layer["slug"],
        "title": layer["name"],
        "description": (kind.title if kind else layer["kind"])
        + f" — version {layer['version']}, {layer['feature_count']} features"
        + (f". {layer['licence']}" if layer["licence"] else ""),
        "itemType": "feature",
        "extent": {
            "spatial": {
                "bbox": [layer["bbox_crs84"]],
                "crs": CRS84,
                # Part 2: the same extent in the storage CRS.
                "storageCrsBbox": [layer["bbox"]],
            }
        },
        "crs": ogc_crs_list(storage_srid),
        "storageCrs": EPSG_URI.format(layer["storage_srid"]),
        "links": links,
    }


def property_types(layer: dict[str, Any]) -> dict[str, str | None]:
    """Each property of a collection with its type (None: text from the file)."""
    kind = KINDS.get(layer["kind"])
    typed = {a.name: a.type for a in kind.attributes} if kind else {}
    return {name: typed.get(name) for name in layer["property_names"] or []}


def _sort_keys(sortby: str | None, types: dict[str, str | None]) -> tuple[tuple[str, bool], ...]:
    keys = []
    for raw in (sortby or "").split(","):
        name = raw.strip()
        if not name:
            continue
        descending = name.startswith("-")
        name = name.lstrip("+-")
        if name not in types:
            raise BadRequest(
                f"sortby names {name!r}, which this collection does not have. Sort by one of: "
                f"{', '.join(types) or 'none'} (prefix - for descending).",
                code="invalid_sortby",
            )
        keys.append((name, descending))
    return tuple(keys)


def _selected(properties: str | None, types: dict[str, str | None]) -> tuple[str, ...] | None:
    if properties is None:
        return None
    names = tuple(n.strip() for n in properties.split(",") if n.strip())
    unknown = [n for n in names if n not in types]
    if unknown:
        raise BadRequest(
            f"properties names {', '.join(unknown)}, which this collection does not have. "
            f"Choose from: {', '.join(types) or 'none'}.",
            code="invalid_properties",
        )
    return names


def ogc_router() -> APIRouter:
    """Build the OGC API – Features router."""
    router = APIRouter(prefix="/ogc", tags=["OGC API - Features"])

    @router.get("", name="ogc_landing", summary="Landing page")
    async def landing(request: Request, f: FormatQuery = None) -> Any:
        """Where the API's description, conformance and data are."""
        root = str(request.url_for("ogc_landing"))
        doc = {
            "title": "geoservice — OGC API Features",
            "description": "Layers of the carbon-aware land-use planning service",
            "links": [
                {"href": root, "rel": "self", "type": JSON, "title": "This document"},
                {
                    "href": str(request.url_for("ogc_api_definition")),
                    "rel": "service-desc",
                    "type": "application/vnd.oai.openapi+json;version=3.0",
                    "title": "The API definition (each collection's filters listed)",
                },
                {
                    "href": str(request.url_for("swagger_ui_html")),
                    "rel": "service-doc",
                    "type": "text/html",
                    "title": "The API documentation",
                },
                {
                    "href": str(request.url_for("ogc_conformance")),
                    "rel": "conformance",
                    "type": JSON,
                    "title": "Conformance classes",
                },
                {
                    "href": str(request.url_for("ogc_collections")),
                    "rel": "data",
                    "type": JSON,
                    "title": "Collections",
                },
                {
                    "href": str(request.url_for("ogc_tile_matrix_sets")),
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                    "type": JSON,
                    "title": "Tile matrix sets",
                },
            ],
        }
        carry_token(request, doc)
        return HTMLResponse(landing_page(doc)) if wants_html(request) else doc

    @router.get(
        "/api",
        name="ogc_api_definition",
        summary="OpenAPI document of the OGC API, each collection's filters listed",
    )
    async def api_definition(request: Request, engine: AsyncEngineDep) -> JSONResponse:
        """Per collection its items path with every queryable as a parameter (what GDAL and
        QGIS read to filter on the server)."""
        layers = await catalog.published_layers(engine)
        collections = [{**la, "types": property_types(la)} for la in layers]
        doc = ogc_api_document(str(request.url_for("ogc_landing")), collections)
        return JSONResponse(doc, media_type="application/vnd.oai.openapi+json;version=3.0")

    @router.get("/conformance", name="ogc_conformance", summary="Conformance classes")
    async def conformance() -> dict[str, Any]:
        """The OGC conformance classes this API implements (Features and Tiles)."""
        return {"conformsTo": CONFORMANCE + TILES_CONFORMANCE}

    @router.get("/collections", name="ogc_collections", summary="Collections")
    async def collections(
        request: Request, engine: AsyncEngineDep, settings: SettingsDep, f: FormatQuery = None
    ) -> Any:
        """One collection per layer with a published version."""
        layers = await catalog.published_layers(engine)
        doc = {
            "links": [{"href": str(request.url), "rel": "self", "type": JSON}],
            "collections": [_collection(request, la, settings.storage_srid) for la in layers],
            "crs": ogc_crs_list(settings.storage_srid),
        }
        carry_token(request, doc)
        return HTMLResponse(collections_page(doc)) if wants_html(request) else doc

    @router.get("/collections/{collection_id}", name="ogc_collection", summary="A collection")
    async def collection(
        collection_id: CollectionId,
        request: Request,
        engine: AsyncEngineDep,
        settings: SettingsDep,
        f: FormatQuery = None,
    ) -> Any:
        """Metadata of one collection."""
        layer = (await catalog.published_layers(engine, collection_id))[0]
        doc = carry_token(request, _collection(request, layer, settings.storage_srid))
        return HTMLResponse(collection_page(doc)) if wants_html(request) else doc

    @router.get(
        "/collections/{collection_id}/queryables",
        name="ogc_queryables",
        summary="What a collection's items can be filtered on (JSON Schema)",
    )
    async def collection_queryables(
        collection_id: CollectionId, request: Request, engine: AsyncEngineDep
    ) -> JSONResponse:
        """Typed properties, code lists as enums; each works as ``?name=value`` on items."""
        layer = (await catalog.published_layers(engine, collection_id))[0]
        return JSONResponse(queryables(layer, str(request.url)), media_type=SCHEMA_JSON)

    @router.get(
        "/collections/{collection_id}/items",
        name="ogc_items",
        summary="Features of a collection",
        response_class=JSONResponse,
    )
    async def items(
        collection_id: CollectionId,
        request: Request,
        engine: AsyncEngineDep,
        settings: SettingsDep,
        limit: Annotated[
            int, Query(ge=1, description="Features per page; above the maximum it is clamped")
        ] = DEFAULT_LIMIT,
        offset: Offset = 0,
        bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy")] = None,
        bbox_crs: Annotated[str | None, Query(alias="bbox-crs")] = None,
        crs: Annotated[str | None, Query(description="Output CRS URI")] = None,
        filter_: Annotated[
            str | None,
            Query(
                alias="filter",
                description="CQL2 filter (text or JSON), e.g. klasse_navn = 'Myr' AND "
                "S_INTERSECTS(geometry, BBOX(10.7, 59.6, 10.9, 59.7))",
            ),
        ] = None,
        filter_lang: Annotated[
            str | None, Query(alias="filter-lang", description="cql2-text (default) or cql2-json")
        ] = None,
        filter_crs: Annotated[
            str | None, Query(alias="filter-crs", description="CRS of geometries in the filter")
        ] = None,
        sortby: Annotated[
            str | None,
            Query(description="Comma-separated properties; - before a name sorts descending"),
        ] = None,
        properties: Annotated[
            str | None, Query(description="Comma-separated properties to return (default all)")
        ] = None,
        f: FormatQuery = None,
    ) -> Response:
        """GeoJSON features, paged; a CQL2 ``filter``, ``sortby``, ``properties``, and
        property=value parameters for each queryable."""
        layer = (await catalog.published_layers(engine, collection_id))[0]
        etag = etag_for(layer["version_id"], request)
        if (cached := not_modified(request, etag)) is not None:
            return cached
        limit = min(limit, settings.max_page_size, MAX_LIMIT)  # the standard clamps, not refuses
        storage = settings.storage_srid
        out_crs = parse_ogc_crs(crs, storage) if crs else parse_ogc_crs(CRS84, storage)
        box = None
        if bbox is not None:
            try:
                numbers = tuple(float(v) for v in bbox.split(","))
            except ValueError as exc:
                raise BadRequest(
                    f"bbox {bbox!r} is not four numbers.", code="invalid_bbox"
                ) from exc
            if len(numbers) != 4:
                raise BadRequest("bbox must have four numbers (2D).", code="invalid_bbox")
            if not all(math.isfinite(n) for n in numbers):
                raise BadRequest(
                    f"bbox {bbox!r} holds a value that is not a finite number (NaN or "
                    "infinity); give minx,miny,maxx,maxy as plain numbers.",
                    code="invalid_bbox",
                )
            if numbers[1] > numbers[3]:
                raise BadRequest(
                    f"bbox {bbox!r}: the lower corner must come first (minx,miny,maxx,maxy).",
                    code="invalid_bbox",
                )
            box = (numbers[0], numbers[1], numbers[2], numbers[3])
        filters = {k: v for k, v in request.query_params.items() if k not in RESERVED}
        unknown = sorted(set(filters) - set(layer["property_names"]))
        if unknown:
            raise BadRequest(
                f"Unknown parameter(s) {', '.join(unknown)}. Properties you can filter on: "
                f"{', '.join(layer['property_names']) or 'none'}.",
                code="unknown_parameter",
            )
        types = property_types(layer)
        condition = None
        if filter_:
            tree = parse_filter(filter_, filter_lang)
            crs_of_filter = parse_ogc_crs(filter_crs or CRS84, storage)
            condition = to_sql(tree, types, crs_of_filter, storage)
        query = FeatureQuery(
            version_id=layer["version_id"],
            out_crs=out_crs,
            storage_srid=storage,
            limit=limit,
            offset=offset,
            bbox=box,
            bbox_crs=parse_ogc_crs(bbox_crs, storage)
            if bbox_crs
            else parse_ogc_crs(CRS84, storage),
            properties=filters,
            filter=condition,
            sortby=_sort_keys(sortby, types),
            select=_selected(properties, types),
            types=types,
        )
        features, returned, matched = await query_features(engine, query, layer["feature_count"])
        links = [{"href": str(request.url), "rel": "self", "type": GEOJSON}]
        if offset + limit < matched:
            links.append(
                {
                    "href": str(request.url.include_query_params(offset=offset + limit)),
                    "rel": "next",
                    "type": GEOJSON,
                }
            )
        if offset > 0:
            links.append(
                {
                    "href": str(request.url.include_query_params(offset=max(0, offset - limit))),
                    "rel": "prev",
                    "type": GEOJSON,
                }
            )
        rest = carry_token(
            request,
            {
                "numberMatched": matched,
                "numberReturned": returned,
                "timeStamp": datetime.now(UTC).isoformat(timespec="seconds"),
                "links": links,
            },
        )
        if wants_html(request):
            collection_doc = {"type": "FeatureCollection", "features": json.loads(features)}
            options = map_options(settings, access_token=request.query_params.get("access_token"))
            # Building the page is CPU work: off the event loop.
            return await run_in_threadpool(
                lambda: html_page(
                    items_map(
                        layer["name"],
                        layer["kind"],
                        collection_doc,
                        links,
                        options,
                        matched=matched,
                    )
                )
            )
        # The features array arrives as JSON text from PostgreSQL; it is spliced in as is.
        body = '{"type":"FeatureCollection","features":' + features + "," + json.dumps(rest)[1:]
        headers = {
            "Content-Crs": f"<{out_crs.uri}>",
            "ETag": etag,
            "Link": ", ".join(f'<{link["href"]}>; rel="{link["rel"]}"' for link in links),
        }
        return Response(body, media_type=GEOJSON, headers=headers)

    @router.get(
        "/collections/{collection_id}/items/{feature_id}",
        name="ogc_item",
        summary="One feature",
        response_class=JSONResponse,
    )
    async def item(
        collection_id: CollectionId,
        feature_id: str,
        request: Request,
        engine: AsyncEngineDep,
        settings: SettingsDep,
        crs: Annotated[str | None, Query(description="Output CRS URI")] = None,
        f: FormatQuery = None,
    ) -> Response:
        """A single feature by id."""
        layer = (await catalog.published_layers(engine, collection_id))[0]
        etag = etag_for(layer["version_id"], request)
        if (cached := not_modified(request, etag)) is not None:
            return cached
        out_crs = parse_ogc_crs(crs or CRS84, settings.storage_srid)
        if not feature_id.isdigit():
            raise NotFound(
                f"There is no feature {feature_id!r}: feature ids are whole numbers.",
                code="feature_not_found",
            )
        row = await get_feature(engine, layer["version_id"], int(feature_id), out_crs)
        collection_url = str(request.url_for("ogc_collection", collection_id=layer["slug"]))
        body = {
            "type": "Feature",
            "id": row.fid,
            "geometry": row.geometry,
            "properties": row.properties,
            "links": [
                {"href": str(request.url), "rel": "self", "type": GEOJSON},
                {"href": collection_url, "rel": "collection", "type": JSON},
            ],
        }
        carry_token(request, body)
        if wants_html(request):
            options = map_options(settings, access_token=request.query_params.get("access_token"))
            title = f"{layer['name']}: objekt {row.fid}"
            single = {"type": "FeatureCollection", "features": [body]}
            return await run_in_threadpool(
                lambda: html_page(items_map(title, layer["kind"], single, [], options))
            )
        return JSONResponse(
            body, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs.uri}>", "ETag": etag}
        )

    return router
