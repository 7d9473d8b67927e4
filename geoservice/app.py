"""Application factory: settings in, a ready FastAPI app out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from analyses import national
from analyses.jobs import fail_interrupted
from core import __version__
from geoservice import logs, migrate
from geoservice.access import RevocationListener, TokenCache
from geoservice.database import create_async_db_engine, create_db_engine, resolve_database_url
from geoservice.handlers import add_exception_handlers
from geoservice.middleware import add_middleware
from geoservice.openapi import use_openapi_30
from geoservice.routers.audit import audit_router
from geoservice.routers.carbon import carbon_router
from geoservice.routers.health import health_router
from geoservice.routers.land_account import land_account_router
from geoservice.routers.layers import layers_router
from geoservice.routers.maps import maps_router
from geoservice.routers.national import national_router
from geoservice.routers.ogc import ogc_router
from geoservice.routers.ogc_tiles import ogc_tiles_router
from geoservice.routers.restoration import restoration_router
from geoservice.routers.tiles import tiles_router
from geoservice.routers.web import web_router
from geoservice.security import identify
from geoservice.settings import Settings
from layers.gdal_env import harden
from layers.tiles import TileCache
from maps.assets import URL_PREFIX, vendor_dir

log = logging.getLogger(__name__)

DESCRIPTION = """
Stores municipal land-use plans and land-cover, nature-type and peat layers in PostGIS,
estimates the carbon stock that building proposals would lose or preserve, and tracks
restoration against the Kunming-Montreal Target 2 (30 % by 2030).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database engine lives as long as the app's lifespan."""
    settings = settings or Settings()
    harden()  # before any upload reaches GDAL (see layers.gdal_env)
    logs.install()  # no token in any log line

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = await run_in_threadpool(resolve_database_url, settings)
        if settings.migrate_on_start:
            await run_in_threadpool(migrate.upgrade, url)
        app.state.engine = create_db_engine(url, settings)
        app.state.async_engine = create_async_db_engine(url, settings)
        listener = RevocationListener(url, app.state.token_cache)
        listener.start()
        try:
            await run_in_threadpool(fail_interrupted, app.state.engine)
            await run_in_threadpool(national.fail_interrupted, app.state.engine)
        except SQLAlchemyError as exc:  # not migrated or not reachable: /healthz will say so
            log.warning("could not check for interrupted analyses: %s", exc.__class__.__name__)
        try:
            yield
        finally:
            listener.stop()
            app.state.engine.dispose()
            await app.state.async_engine.dispose()

    app = FastAPI(
        title="geoservice",
        summary="Carbon-aware land-use planning for Norwegian municipalities",
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served below from the service's own copies of Swagger UI and ReDoc
        redoc_url=None,  # (offline; FastAPI's defaults load them from a CDN)
    )
    app.state.settings = settings
    app.state.token_cache = TokenCache(settings.token_cache_s)
    app.state.tile_cache = (
        TileCache(settings.data_path / "tiles", settings.tile_cache_mb * 1024 * 1024)
        if settings.tile_cache
        else None
    )
    add_exception_handlers(app)
    add_middleware(app, settings)
    app.include_router(health_router())
    # Every data router resolves the caller first; writes then check their own role.
    guarded = [Depends(identify)]
    for router in (
        layers_router(),
        ogc_router(),
        ogc_tiles_router(),
        carbon_router(),
        land_account_router(),
        national_router(),
        restoration_router(),
        maps_router(),
        tiles_router(),
        audit_router(),
    ):
        app.include_router(router, dependencies=guarded)
    # Leaflet and VectorGrid from the npm install made at set-up; check_dir=False so the API
    # still starts without them (map pages then answer 503 with the fix).
    app.mount(
        URL_PREFIX,
        StaticFiles(directory=vendor_dir(settings.map_assets_dir), check_dir=False),
        name="vendor",
    )
    # The workbench's own CSS and scripts (templates render the pages).
    app.mount(
        "/static/web",
        StaticFiles(directory=Path(__file__).resolve().parent / "static"),
        name="web-static",
    )
    app.include_router(web_router())
    use_openapi_30(app)
    add_offline_docs(app)
    return app


def add_offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from npm, served by the service: they work
    without internet."""
    swagger = f"{URL_PREFIX}/swagger-ui-dist"

    @app.get("/redoc", include_in_schema=False, name="redoc_html")
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} – API",
            redoc_js_url=f"{URL_PREFIX}/redoc/bundles/redoc.standalone.js",
            redoc_favicon_url=f"{swagger}/favicon-32x32.png",
            with_google_fonts=False,
        )

    @app.get("/docs", include_in_schema=False, name="swagger_ui_html")
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} – API",
            swagger_js_url=f"{swagger}/swagger-ui-bundle.js",
            swagger_css_url=f"{swagger}/swagger-ui.css",
            swagger_favicon_url=f"{swagger}/favicon-32x32.png",
        )
