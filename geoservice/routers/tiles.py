"""``/tiles/{layer_id}/{z}/{x}/{y}.pbf``: Mapbox vector tiles of a layer version."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from geoservice.dependencies import EngineDep, Id, SettingsDep, VersionQuery
from layers import catalog
from layers.tiles import MVT_LAYER, TILE_FORMAT, Tile, TileCache, code_labels, get_tile

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


def tiles_router() -> APIRouter:
    """Build the vector tile router."""
    router = APIRouter(prefix="/tiles", tags=["tiles"])

    @router.get(
        "/{layer_id}/{z}/{x}/{y}.pbf",
        response_class=Response,
        summary="Vector tile (MVT) of a layer",
        description=f"One MVT layer named `{MVT_LAYER}`; feature id = feature fid; the kind's "
        "typed attributes as properties, each code with its name beside it "
        "(`arealtype_navn`). Web-mercator XYZ addressing, as Leaflet asks. "
        "Tiles of a named version never change and are cached for a year.",
        responses={200: {"content": {MVT_MEDIA_TYPE: {}}}},
    )
    def tile(
        request: Request,
        layer_id: Id,
        z: int,
        x: int,
        y: int,
        engine: EngineDep,
        settings: SettingsDep,
        version: VersionQuery = None,
    ) -> Response:
        with engine.connect() as conn:
            version_id = catalog.version_id_of(conn, layer_id, version)
            layer = catalog.layer_with_active_version(conn, layer_id)
        etag = f'"v{version_id}-f{TILE_FORMAT}-{z}-{x}-{y}"'
        cache_control = (
            "public, max-age=31536000, immutable" if version is not None else "public, max-age=60"
        )
        headers = {"ETag": etag, "Cache-Control": cache_control}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        cache: TileCache | None = request.app.state.tile_cache
        labels = code_labels(layer.kind) if layer is not None else None
        data = get_tile(engine, version_id, Tile(z, x, y), settings.storage_srid, cache, labels)
        return Response(data, media_type=MVT_MEDIA_TYPE, headers=headers)

    return router
