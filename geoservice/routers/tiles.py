"""``/tiles/{layer_id}/{z}/{x}/{y}.pbf``: Mapbox vector tiles of a layer version."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from geoservice.dependencies import AsyncEngineDep, Id, SettingsDep, VersionQuery
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
    async def tile(
        request: Request,
        layer_id: Id,
        z: int,
        x: int,
        y: int,
        engine: AsyncEngineDep,
        settings: SettingsDep,
        version: VersionQuery = None,
    ) -> Response:
        source = await catalog.tile_source(engine, layer_id, version)
        version_id = source.version_id
        etag = f'"v{version_id}-f{TILE_FORMAT}-{z}-{x}-{y}"'
        cache_control = (
            "public, max-age=31536000, immutable" if version is not None else "public, max-age=60"
        )
        headers = {"ETag": etag, "Cache-Control": cache_control}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        cache: TileCache | None = request.app.state.tile_cache
        data = await get_tile(
            engine,
            version_id,
            Tile(z, x, y),
            settings.storage_srid,
            cache,
            code_labels(source.kind, source.attributes),
            smallest_feature_m=source.smallest_feature_m,
        )
        return Response(data, media_type=MVT_MEDIA_TYPE, headers=headers)

    return router
