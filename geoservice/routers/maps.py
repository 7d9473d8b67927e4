"""``/maps/...``: interactive map pages (Leaflet served by the service, strict CSP)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from geoservice.dependencies import EngineDep, SettingsDep
from maps.layer_map import layer_map
from maps.page import MapOptions, MapPage
from maps.plan_map import plan_map
from maps.proposal_map import proposal_map
from maps.restoration_map import restoration_map


def html_page(page: MapPage) -> HTMLResponse:
    """The rendered page with its content-security policy."""
    rendered = page.render()
    return HTMLResponse(
        rendered.html,
        headers={
            "Content-Security-Policy": rendered.content_security_policy(),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-cache",
        },
    )


def _token(request: Request) -> str | None:
    return request.query_params.get("access_token") or None


def maps_router() -> APIRouter:
    """Build the map page router."""
    router = APIRouter(prefix="/maps", tags=["maps"])

    @router.get("/layers/{layer_id}", response_class=HTMLResponse, summary="Map of a layer")
    async def map_layer(
        request: Request,
        layer_id: int,
        engine: EngineDep,
        settings: SettingsDep,
        version: Annotated[int | None, Query(description="Layer version; default active")] = None,
    ) -> HTMLResponse:
        page = await run_in_threadpool(
            layer_map,
            engine,
            layer_id,
            version,
            MapOptions.from_settings(settings, access_token=_token(request)),
        )
        return await run_in_threadpool(html_page, page)

    @router.get(
        "/proposals/{proposal_id}", response_class=HTMLResponse, summary="Map of a proposal"
    )
    async def map_proposal(
        request: Request, proposal_id: int, engine: EngineDep, settings: SettingsDep
    ) -> HTMLResponse:
        page = await run_in_threadpool(
            proposal_map,
            engine,
            proposal_id,
            MapOptions.from_settings(settings, access_token=_token(request)),
            settings.storage_srid,
        )
        return await run_in_threadpool(html_page, page)

    @router.get("/plans/{layer_id}", response_class=HTMLResponse, summary="Emissions map of a plan")
    async def map_plan(
        request: Request, layer_id: int, engine: EngineDep, settings: SettingsDep
    ) -> HTMLResponse:
        page = await run_in_threadpool(
            plan_map,
            engine,
            layer_id,
            MapOptions.from_settings(settings, access_token=_token(request)),
        )
        return await run_in_threadpool(html_page, page)

    @router.get("/restoration", response_class=HTMLResponse, summary="Restoration progress map")
    async def map_restoration(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        level: Literal["kommune", "fylke"] = "kommune",
        as_of: Annotated[date | None, Query(description="Date of the newest year shown")] = None,
        ecosystem: Annotated[str | None, Query(description="Ecosystem type code")] = None,
    ) -> HTMLResponse:
        page = await run_in_threadpool(
            lambda: restoration_map(
                engine,
                MapOptions.from_settings(settings, access_token=_token(request)),
                level=level,
                as_of=as_of,
                ecosystem=ecosystem,
            )
        )
        return await run_in_threadpool(html_page, page)

    return router
