"""``/maps/...``: interactive map pages (Leaflet served by the service, strict CSP).

Handlers are plain functions: FastAPI runs them in its thread pool, away from the event loop.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from analyses.jobs import land_account_result
from geoservice.dependencies import AsOfQuery, EngineDep, Id, SettingsDep, VersionQuery
from geoservice.map_options import map_options
from geoservice.settings import Settings
from maps.land_account_map import land_account_map
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


def _options(request: Request, settings: Settings) -> MapOptions:
    """Map settings; a page opened with ?access_token= hands it on to its tiles."""
    return map_options(settings, access_token=request.query_params.get("access_token") or None)


def maps_router() -> APIRouter:
    """Build the map page router."""
    router = APIRouter(prefix="/maps", tags=["maps"])

    @router.get("/layers/{layer_id}", response_class=HTMLResponse, summary="Map of a layer")
    def map_layer(
        request: Request,
        layer_id: Id,
        engine: EngineDep,
        settings: SettingsDep,
        version: VersionQuery = None,
    ) -> HTMLResponse:
        return html_page(layer_map(engine, layer_id, version, _options(request, settings)))

    @router.get(
        "/proposals/{proposal_id}", response_class=HTMLResponse, summary="Map of a proposal"
    )
    def map_proposal(
        request: Request, proposal_id: Id, engine: EngineDep, settings: SettingsDep
    ) -> HTMLResponse:
        options = _options(request, settings)
        return html_page(proposal_map(engine, proposal_id, options, settings.storage_srid))

    @router.get("/plans/{layer_id}", response_class=HTMLResponse, summary="Emissions map of a plan")
    def map_plan(
        request: Request, layer_id: Id, engine: EngineDep, settings: SettingsDep
    ) -> HTMLResponse:
        return html_page(plan_map(engine, layer_id, _options(request, settings)))

    @router.get("/restoration", response_class=HTMLResponse, summary="Restoration progress map")
    def map_restoration(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        level: Literal["kommune", "fylke"] = "kommune",
        as_of: AsOfQuery = None,
        ecosystem: Annotated[str | None, Query(description="Ecosystem type code")] = None,
    ) -> HTMLResponse:
        page = restoration_map(
            engine, _options(request, settings), level=level, as_of=as_of, ecosystem=ecosystem
        )
        return html_page(page)

    @router.get(
        "/plans/analyses/{job_id}/arealregnskap",
        response_class=HTMLResponse,
        summary="Map of a land account: the reserve by carbon at stake, land moved in and out",
    )
    def map_land_account(
        request: Request,
        job_id: Id,
        engine: EngineDep,
        settings: SettingsDep,
        lang: Annotated[Literal["nb", "en"], Query(description="nb (default) or en")] = "nb",
    ) -> HTMLResponse:
        account = land_account_result(engine, job_id)
        return html_page(land_account_map(engine, account, _options(request, settings), lang))

    return router
