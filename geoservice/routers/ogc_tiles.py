"""OGC API – Tiles under ``/ogc``: the WebMercatorQuad tile matrix set, a vector tileset per
collection, its tiles, and TileJSON for clients that take that (MapLibre, QGIS).

The tiles are the same MVT as ``/tiles/{layer}/{z}/{x}/{y}.pbf``: one layer ``features``,
typed attributes with the names of their codes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from core.errors import NotFound
from geoservice.dependencies import AsyncEngineDep, SettingsDep
from geoservice.routers.ogc_links import carry_token
from layers import catalog
from layers.kinds import KINDS
from layers.tiles import (
    MAX_ZOOM,
    MVT_LAYER,
    TILE_FORMAT,
    UTM33,
    Tile,
    TileCache,
    code_labels,
    get_tile,
)

MVT = "application/vnd.mapbox-vector-tile"
JSON = "application/json"
WEB_MERCATOR_QUAD = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
UTM33_MAX_ZOOM = 17  # 0.17 m per pixel
TITLES = {
    WEB_MERCATOR_QUAD: "Google Maps Compatible for the World",
    UTM33.id: "EUREF89 UTM 33 (EPSG:25833) as Kartverket's caches tile it",
}
CRS_OF = {
    WEB_MERCATOR_QUAD: "http://www.opengis.net/def/crs/EPSG/0/3857",
    UTM33.id: "http://www.opengis.net/def/crs/EPSG/0/25833",
}
HALF_WORLD = 20037508.3427892
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
CollectionId = Annotated[str, Path(max_length=80, description="Collection id (slug or number)")]
TmsId = Annotated[
    str,
    Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$", description="WebMercatorQuad or UTM33N"),
]
JSON_TYPES = {"int": "Number", "float": "Number", "text": "String"}


def web_mercator_quad() -> dict[str, Any]:
    """The WebMercatorQuad definition (OGC 17-083r4 annex D), zoom 0 to the service's max."""
    return {
        "id": WEB_MERCATOR_QUAD,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": [
            {
                "id": str(z),
                "scaleDenominator": 559082264.0287178 / 2**z,
                "cellSize": 156543.03392804097 / 2**z,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-HALF_WORLD, HALF_WORLD],
                "tileWidth": 256,
                "tileHeight": 256,
                "matrixWidth": 2**z,
                "matrixHeight": 2**z,
            }
            for z in range(MAX_ZOOM + 1)
        ],
    }


def utm33_quad() -> dict[str, Any]:
    """The UTM 33 tile matrix set: level 0 is one 256-pixel tile of 21 664 m per pixel with
    its top left at (−2 500 000, 9 045 984), each level halving, as Kartverket tiles it."""
    return {
        "id": UTM33.id,
        "title": TITLES[UTM33.id],
        "crs": CRS_OF[UTM33.id],
        "orderedAxes": ["E", "N"],
        "tileMatrices": [
            {
                "id": str(z),
                "scaleDenominator": UTM33.size0 / 256 / 2**z / 0.00028,
                "cellSize": UTM33.size0 / 256 / 2**z,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [UTM33.left, UTM33.top],
                "tileWidth": 256,
                "tileHeight": 256,
                "matrixWidth": 2**z,
                "matrixHeight": 2**z,
            }
            for z in range(UTM33_MAX_ZOOM + 1)
        ],
    }


DEFINITIONS = {WEB_MERCATOR_QUAD: web_mercator_quad, UTM33.id: utm33_quad}


def definition(tms_id: str) -> dict[str, Any]:
    """A tile matrix set by id; 404 naming the ones there are."""
    if tms_id not in DEFINITIONS:
        raise NotFound(
            f"There is no tile matrix set {tms_id!r}; the tiles come in "
            f"{' and '.join(DEFINITIONS)}.",
            code="tile_matrix_set_not_found",
        )
    return DEFINITIONS[tms_id]()


def _tms_uri(tms_id: str, request: Request) -> str:
    if tms_id == WEB_MERCATOR_QUAD:
        return TMS_URI
    return str(request.url_for("ogc_tile_matrix_set", tms_id=tms_id))


def _fields(layer: dict[str, Any]) -> dict[str, str]:
    kind = KINDS.get(layer["kind"])
    fields = {}
    for attribute in kind.attributes if kind else ():
        if attribute.name in (layer["property_names"] or []):
            fields[attribute.name] = JSON_TYPES.get(attribute.type, "String")
            if attribute.codelist:
                fields[f"{attribute.name}_navn"] = "String"
    return fields


def ogc_tiles_router() -> APIRouter:
    """Build the OGC API – Tiles router."""
    router = APIRouter(prefix="/ogc", tags=["OGC API - Tiles"])

    def tiles_base(request: Request, layer: dict[str, Any]) -> str:
        return str(request.url_for("ogc_collection", collection_id=layer["slug"])) + "/tiles"

    def template(request: Request, layer: dict[str, Any], tms_id: str) -> str:
        return tiles_base(request, layer) + f"/{tms_id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"

    @router.get("/tileMatrixSets", name="ogc_tile_matrix_sets", summary="Tile matrix sets")
    async def tile_matrix_sets(request: Request) -> dict[str, Any]:
        """The tiling schemes the tiles use: web mercator and UTM 33."""
        return {
            "tileMatrixSets": [
                {
                    "id": tms_id,
                    "title": TITLES[tms_id],
                    "uri": _tms_uri(tms_id, request),
                    "links": [
                        {
                            "href": str(request.url_for("ogc_tile_matrix_set", tms_id=tms_id)),
                            "rel": "self",
                            "type": JSON,
                        }
                    ],
                }
                for tms_id in DEFINITIONS
            ]
        }

    @router.get("/tileMatrixSets/{tms_id}", name="ogc_tile_matrix_set", summary="A tile matrix set")
    async def tile_matrix_set(tms_id: TmsId) -> dict[str, Any]:
        """Its definition: the matrices, zoom by zoom."""
        return definition(tms_id)

    @router.get(
        "/collections/{collection_id}/tiles",
        name="ogc_collection_tilesets",
        summary="The vector tilesets of a collection",
    )
    async def tilesets(
        collection_id: CollectionId, request: Request, engine: AsyncEngineDep
    ) -> dict[str, Any]:
        """One vector tileset, in WebMercatorQuad."""
        layer = (await catalog.published_layers(engine, collection_id))[0]
        base = tiles_base(request, layer)
        return carry_token(
            request,
            {
                "tilesets": [
                    {
                        "title": f"{layer['name']} (vector tiles, {tms_id})",
                        "dataType": "vector",
                        "crs": CRS_OF[tms_id],
                        "tileMatrixSetURI": _tms_uri(tms_id, request),
                        "links": [
                            {"href": f"{base}/{tms_id}", "rel": "self", "type": JSON},
                            {
                                "href": str(request.url_for("ogc_tile_matrix_set", tms_id=tms_id)),
                                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                                "type": JSON,
                            },
                        ],
                    }
                    for tms_id in DEFINITIONS
                ],
                "links": [{"href": base, "rel": "self", "type": JSON}],
            },
        )

    @router.get(
        "/collections/{collection_id}/tiles/{tms_id}",
        name="ogc_collection_tileset",
        summary="A collection's vector tileset",
    )
    async def tileset(
        collection_id: CollectionId, tms_id: TmsId, request: Request, engine: AsyncEngineDep
    ) -> dict[str, Any]:
        """Where the tiles are, their layer and its fields."""
        definition(tms_id)
        layer = (await catalog.published_layers(engine, collection_id))[0]
        base = tiles_base(request, layer)
        links = [
            {"href": f"{base}/{tms_id}", "rel": "self", "type": JSON},
            {
                "href": str(request.url_for("ogc_tile_matrix_set", tms_id=tms_id)),
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                "type": JSON,
            },
            {
                "href": template(request, layer, tms_id),
                "rel": "item",
                "type": MVT,
                "templated": True,
            },
        ]
        if tms_id == WEB_MERCATOR_QUAD:
            links.append(
                {
                    "href": f"{base}/{WEB_MERCATOR_QUAD}/tilejson.json",
                    "rel": "describedby",
                    "type": JSON,
                    "title": "TileJSON",
                }
            )
        return carry_token(
            request,
            {
                "title": f"{layer['name']} (vector tiles, {tms_id})",
                "dataType": "vector",
                "crs": CRS_OF[tms_id],
                "tileMatrixSetURI": _tms_uri(tms_id, request),
                "boundingBox": {
                    "lowerLeft": layer["bbox_crs84"][:2],
                    "upperRight": layer["bbox_crs84"][2:],
                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                },
                "layers": [
                    {
                        "id": MVT_LAYER,
                        "dataType": "vector",
                        "propertiesSchema": {
                            "type": "object",
                            "properties": {
                                name: {"type": "number" if kind == "Number" else "string"}
                                for name, kind in _fields(layer).items()
                            },
                        },
                    }
                ],
                "links": links,
            },
        )

    @router.get(
        "/collections/{collection_id}/tiles/{tms_id}/tilejson.json",
        name="ogc_tilejson",
        summary="TileJSON of a collection's vector tiles",
    )
    async def tilejson(
        collection_id: CollectionId, tms_id: TmsId, request: Request, engine: AsyncEngineDep
    ) -> dict[str, Any]:
        """TileJSON 3.0.0: the tile URL, zooms, bounds and the layer's fields."""
        if tms_id != WEB_MERCATOR_QUAD:
            raise NotFound(
                f"TileJSON describes web-mercator tiles; the {tms_id} tileset is described at "
                f".../tiles/{tms_id}.",
                code="tilejson_not_found",
            )
        layer = (await catalog.published_layers(engine, collection_id))[0]
        url = template(request, layer, tms_id).replace("{tileMatrix}", "{z}")
        url = url.replace("{tileRow}", "{y}").replace("{tileCol}", "{x}")
        token = request.query_params.get("access_token")
        if token:  # a client that authenticated by parameter keeps doing so for its tiles
            url += "?access_token=" + token
        return {
            "tilejson": "3.0.0",
            "name": layer["name"],
            "tiles": [url],
            "minzoom": 0,
            "maxzoom": MAX_ZOOM,
            "bounds": layer["bbox_crs84"],
            "vector_layers": [{"id": MVT_LAYER, "fields": _fields(layer)}],
        }

    @router.get(
        "/collections/{collection_id}/tiles/{tms_id}/{tile_matrix}/{tile_row}/{tile_col}",
        name="ogc_tile",
        summary="One vector tile (MVT)",
        response_class=Response,
        responses={200: {"content": {MVT: {}}}},
    )
    async def tile(
        collection_id: CollectionId,
        tms_id: TmsId,
        tile_matrix: int,
        tile_row: int,
        tile_col: int,
        request: Request,
        engine: AsyncEngineDep,
        settings: SettingsDep,
    ) -> Response:
        """The tile at zoom ``tileMatrix``, row ``tileRow`` (y), column ``tileCol`` (x)."""
        definition(tms_id)
        layer_id = await catalog.collection_layer_id(engine, collection_id)
        source = await catalog.tile_source(engine, layer_id, None)
        version_id = source.version_id
        etag = f'"v{version_id}-f{TILE_FORMAT}-{tms_id}-{tile_matrix}-{tile_col}-{tile_row}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        cache: TileCache | None = request.app.state.tile_cache
        data = await get_tile(
            engine,
            version_id,
            Tile(tile_matrix, tile_col, tile_row),
            settings.storage_srid,
            cache,
            code_labels(source.kind, source.attributes),
            tms_id,
            smallest_feature_m=source.smallest_feature_m,
        )
        return Response(data, media_type=MVT, headers=headers)

    return router
