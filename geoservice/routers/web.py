"""The workbench: server-rendered pages in bokmål (``?lang=en`` for English) for planners,
GIS staff and ecologists; every asset served by the service, so it works on an intranet.

Pages call the same functions as the API (one way to do each thing); a form that fails shows
the service's message next to the field it concerns, with the values kept. Writes need the
session's CSRF token (checked by the gatekeeper before the body is read).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import UploadFile as StarletteUpload

from analyses import jobs
from analyses.assessment import ProposalRequest, assess, registry
from analyses.land_account import check_plans
from analyses.presets import DEFAULT_PRESET, PRESETS
from core.errors import GeoServiceError, InvalidInput
from core.i18n import LANGS, Lang, number, t
from geoservice import access
from geoservice.dependencies import EngineDep, RegionQuery, SettingsDep
from geoservice.security import principal_of
from geoservice.settings import Settings
from geoservice.web_session import (
    LOGIN_COOKIE,
    SESSION_LIFETIME,
    clear_session,
    cookie,
    csrf_for,
    csrf_ok,
    new_login_secret,
    session_token,
    set_login_secret,
    set_session,
)
from layers import catalog, codelists
from layers.geometry_limits import check_request_geometry

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


def page_csp(image_origin: str = "") -> str:
    """Scripts and styles only from the service; images also from the background map's host."""
    images = f"'self' data: {image_origin}".strip()
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


PAGE_CSP = page_csp()
PAGE_SIZE = 25
# Which page each role starts from, and the sections it sees.
SECTIONS = {
    "planner": ("vurderinger",),
    "gis": ("lag",),
    "ecologist": ("restaurering",),
    "viewer": ("vurderinger", "lag", "restaurering"),
    "admin": ("vurderinger", "lag", "restaurering"),
}


def _lang(request: Request) -> Lang:
    asked = request.query_params.get("lang") or cookie(request.headers, "gs_lang") or "nb"
    return "en" if asked == "en" else "nb"


def _render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    lang = _lang(request)
    principal = principal_of(request)
    token = session_token(request.headers)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": lambda key, **v: t(key, lang, **v),
            "number": lambda value, digits=0: number(value, digits, lang),
            "who": principal,
            "csrf": csrf_for(token) if token else "",
            "sections": SECTIONS.get(principal.role, ()) if principal else (),
            **context,
        },
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in LANGS:
        response.set_cookie("gs_lang", _lang(request), samesite="strict", httponly=True)
    return response


def _signed_in(request: Request, role: str | None = None) -> Response | None:
    """A redirect to the sign-in page for a visitor without a session, or a 403 page for a
    role that may not do this; None when the person may go on."""
    principal = principal_of(request)
    if principal is None or session_token(request.headers) is None:
        return RedirectResponse(f"/logg-inn?neste={request.url.path}", status_code=303)
    if role is not None and not principal.may(role):
        return _render(
            request, "forbidden.html", status_code=403, needed=t(f"web.role.{role}", _lang(request))
        )
    return None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _building_codes() -> list[tuple[int, str]]:
    formal = codelists.load("arealformal")
    return [
        (int(code), str(row["name"]))
        for code, row in formal.rows.items()
        if row["building_zone"] in ("yes", "partial")
    ]


def _basemap(settings: Settings) -> str:
    """The background map's tile URL for the drawing map ('' for none)."""
    from maps.page import KARTVERKET_TOPO

    choice = settings.map_basemap
    return "" if choice == "none" else KARTVERKET_TOPO if choice == "kartverket" else choice


def _land_cover_tiles(engine: Any) -> str:
    """Tiles of the newest land-cover layer, drawn under the drawing for orientation."""
    with engine.connect() as conn:
        found = catalog.active_versions(conn, "land_cover")
    return f"/tiles/{found[-1].layer_id}/{{z}}/{{x}}/{{y}}.pbf" if found else ""


def _proposal_form(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> HTMLResponse:
    state = request.app.state
    basemap = _basemap(state.settings)
    response = _render(
        request,
        "proposal_new.html",
        status_code=422 if errors else 200,
        codes=_building_codes(),
        presets=list(PRESETS),
        values=values,
        errors=errors,
        basemap=basemap,
        land_tiles=_land_cover_tiles(state.engine),
    )
    if basemap:  # the background map's host may serve images to this page
        parts = urlsplit(basemap)
        response.headers["Content-Security-Policy"] = page_csp(f"{parts.scheme}://{parts.netloc}")
    return response


def _error_field(exc: GeoServiceError) -> str:
    """Which form field a refusal concerns, from its code."""
    code = getattr(exc, "code", "")
    if "arealformal" in code:
        return "arealformal"
    if "preset" in code:
        return "preset"
    if "built_share" in code or "share" in code:
        return "built_share"
    return "footprint"


def _read_footprint(upload: StarletteUpload, settings: Settings) -> tuple[dict[str, Any], str]:
    """A footprint file (GeoJSON, zipped Shapefile, GeoPackage, SOSI ...) through the one
    reader, as a FeatureCollection and its CRS."""
    from geoservice.routers.layers import save_upload
    from layers.reader import features_from_file

    with tempfile.TemporaryDirectory(dir=settings.data_path) as workdir:
        path, _, shown = save_upload(upload, settings, Path(workdir))
        features, crs = features_from_file(
            path,
            Path(workdir),
            max_features=settings.max_upload_features,
            display_name=shown,
        )
    collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": g, "properties": p} for g, p in features],
    }
    return collection, crs


def _alternatives(upload: Any, settings: Settings, crs: str) -> dict[str, dict[str, Any]]:
    """Alternative sites from a file, one per feature, named by its navn/name, in the CRS of
    the site (a drawn site is in lon/lat, a file may be in UTM)."""
    if not isinstance(upload, StarletteUpload) or not upload.filename:
        return {}
    from layers.crs import parse_crs, reproject_geojson

    collection, file_crs = _read_footprint(upload, settings)
    source, target = parse_crs(file_crs).to_epsg(), parse_crs(crs).to_epsg()
    found: dict[str, dict[str, Any]] = {}
    for position, feature in enumerate(collection["features"], start=1):
        props = feature.get("properties") or {}
        name = str(props.get("navn") or props.get("name") or f"Alternativ {position}")
        geometry = feature["geometry"]
        if source and target:
            geometry = reproject_geojson(geometry, source, target)
        found[name] = geometry
    return found


def web_router() -> APIRouter:
    """Build the workbench's pages."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        if (redirect := _signed_in(request)) is not None:
            return redirect
        return _render(request, "home.html")

    @router.get("/logg-inn", response_class=HTMLResponse)
    def login_page(request: Request, neste: str = "/") -> Response:
        secret = new_login_secret()
        response = _render(
            request, "login.html", login_csrf=csrf_for(secret), neste=_local(neste), error=None
        )
        set_login_secret(response, secret, secure=_secure(request))
        return response

    @router.post("/logg-inn", response_class=HTMLResponse)
    def login(
        request: Request,
        engine: EngineDep,
        token: Annotated[str, Form(max_length=200)],
        login_csrf: Annotated[str, Form(max_length=100)],
        neste: Annotated[str, Form(max_length=200)] = "/",
    ) -> Response:
        secret = cookie(request.headers, LOGIN_COOKIE)
        if secret is None or not csrf_ok(secret, login_csrf):
            return _render(
                request,
                "login.html",
                status_code=403,
                login_csrf="",
                neste="/",
                error=t("web.login_expired", _lang(request)),
            )
        principal = access.authenticate(engine, token.strip())
        if principal is None:
            fresh = new_login_secret()
            refused = _render(
                request,
                "login.html",
                status_code=401,
                login_csrf=csrf_for(fresh),
                neste=_local(neste),
                error=t("web.login_failed", _lang(request)),
            )
            set_login_secret(refused, fresh, secure=_secure(request))
            return refused
        _, session = access.create_token(
            engine, principal.user, principal.role, expires_in=SESSION_LIFETIME
        )
        signed_in = RedirectResponse(_local(neste), status_code=303)
        set_session(signed_in, session, secure=_secure(request))
        return signed_in

    @router.post("/logg-ut")
    def logout(request: Request, engine: EngineDep) -> Response:
        token = session_token(request.headers)
        if token is not None:
            access.revoke_token_value(engine, token)
        response = RedirectResponse("/logg-inn", status_code=303)
        clear_session(response)
        return response

    # --- planner ------------------------------------------------------------------------
    @router.get("/vurderinger", response_class=HTMLResponse)
    def proposals(
        request: Request,
        engine: EngineDep,
        q: Annotated[str | None, Query(max_length=200)] = None,
        side: Annotated[int, Query(ge=1, le=10_000)] = 1,
        slettede: bool = False,
    ) -> Response:
        if (redirect := _signed_in(request)) is not None:
            return redirect
        items, total = registry.list_proposals(
            engine, q=q, limit=PAGE_SIZE, offset=(side - 1) * PAGE_SIZE, deleted=slettede
        )
        return _render(
            request,
            "proposals.html",
            items=items,
            total=total,
            q=q or "",
            side=side,
            pages=max(1, -(-total // PAGE_SIZE)),
            slettede=slettede,
        )

    @router.get("/vurderinger/ny", response_class=HTMLResponse)
    def proposal_new(request: Request) -> Response:
        if (redirect := _signed_in(request, "planner")) is not None:
            return redirect
        values = {"arealformal": 1110, "preset": DEFAULT_PRESET, "peat_handling": "drained"}
        return _proposal_form(request, values, {})

    @router.post("/vurderinger/ny", response_class=HTMLResponse)
    async def proposal_create(
        request: Request, engine: EngineDep, settings: SettingsDep
    ) -> Response:
        if (redirect := _signed_in(request, "planner")) is not None:
            return redirect
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        errors: dict[str, str] = {}
        lang = _lang(request)
        upload = form.get("fil")
        try:
            if isinstance(upload, StarletteUpload) and upload.filename:
                footprint, crs = await run_in_threadpool(_read_footprint, upload, settings)
            elif values.get("footprint"):
                footprint, crs = json.loads(values["footprint"]), "EPSG:4326"
            else:
                raise InvalidInput(t("web.no_footprint", lang), code="no_footprint")
            check_request_geometry(footprint, settings.geometry_limits, "proposal")
            alternatives = await run_in_threadpool(
                _alternatives, form.get("alternativer"), settings, crs
            )
            share = values.get("built_share", "").replace(",", ".").strip()
            request_body = ProposalRequest(
                footprint=footprint,
                crs=crs,
                arealformal=int(values.get("arealformal") or 0),
                built_share=float(share) / 100 if share else None,
                preset=values.get("preset") or DEFAULT_PRESET,
                peat_handling=values.get("peat_handling") or "drained",  # type: ignore[arg-type]
                name=values.get("name") or None,
                alternatives=alternatives,
            )
            who = principal_of(request)
            result = await run_in_threadpool(
                assess,
                engine,
                request_body,
                storage_srid=settings.storage_srid,
                user=who.user if who else None,
            )
        except (GeoServiceError, ValueError, json.JSONDecodeError) as exc:
            detail = exc.detail if isinstance(exc, GeoServiceError) else str(exc)
            field = _error_field(exc) if isinstance(exc, GeoServiceError) else "built_share"
            errors[field] = detail
            return _proposal_form(request, values, errors)
        return RedirectResponse(f"/vurderinger/{result['id']}", status_code=303)

    @router.get("/vurderinger/{proposal_id:int}", response_class=HTMLResponse)
    def proposal_page(request: Request, proposal_id: int, engine: EngineDep) -> Response:
        if (redirect := _signed_in(request)) is not None:
            return redirect
        from analyses.assessment import get_proposal

        result = get_proposal(engine, proposal_id)
        return _render(request, "proposal.html", p=result)

    @router.post("/vurderinger/{proposal_id}/navn")
    def proposal_rename(
        request: Request,
        proposal_id: int,
        engine: EngineDep,
        name: Annotated[str, Form(min_length=1, max_length=200)],
    ) -> Response:
        if (redirect := _signed_in(request, "planner")) is not None:
            return redirect
        registry.rename_proposal(engine, proposal_id, name)
        return RedirectResponse("/vurderinger", status_code=303)

    @router.post("/vurderinger/{proposal_id}/slett")
    def proposal_delete(request: Request, proposal_id: int, engine: EngineDep) -> Response:
        if (redirect := _signed_in(request, "planner")) is not None:
            return redirect
        registry.delete_proposal(engine, proposal_id)
        return RedirectResponse("/vurderinger", status_code=303)

    @router.post("/vurderinger/{proposal_id}/gjenopprett")
    def proposal_restore(request: Request, proposal_id: int, engine: EngineDep) -> Response:
        if (redirect := _signed_in(request, "planner")) is not None:
            return redirect
        registry.restore_proposal(engine, proposal_id)
        return RedirectResponse("/vurderinger?slettede=true", status_code=303)

    # --- GIS staff -----------------------------------------------------------------------
    @router.get("/lag", response_class=HTMLResponse)
    def layers_page(request: Request, engine: EngineDep) -> Response:
        if (redirect := _signed_in(request)) is not None:
            return redirect
        items, total = catalog.list_layers(engine, limit=200, offset=0)
        from layers.kinds import KINDS

        return _render(request, "layers.html", items=items, total=total, kinds=list(KINDS))

    @router.get("/lag/{layer_id}", response_class=HTMLResponse)
    def layer_page(request: Request, layer_id: int, engine: EngineDep) -> Response:
        if (redirect := _signed_in(request)) is not None:
            return redirect
        layer = catalog.get_layer(engine, layer_id)
        versions = catalog.list_versions(engine, layer_id)
        with engine.connect() as conn:
            plans = catalog.active_versions(conn, "land_use_plan")
        plans = [p for p in plans if p.layer_id != layer_id]
        return _render(request, "layer.html", layer=layer, versions=versions, plans=plans)

    @router.post("/lag/{layer_id}/versjoner/{version}/aktiver")
    def layer_activate(
        request: Request, layer_id: int, version: int, engine: EngineDep
    ) -> Response:
        if (redirect := _signed_in(request, "gis")) is not None:
            return redirect
        catalog.activate_version(engine, layer_id, version)
        return RedirectResponse(f"/lag/{layer_id}", status_code=303)

    # --- plans: analysis and land account as jobs, with their progress --------------------
    @router.post("/lag/{layer_id:int}/analyse")
    async def plan_start(
        request: Request, layer_id: int, engine: EngineDep, background: BackgroundTasks
    ) -> Response:
        if (redirect := _signed_in(request, "planner")) is not None:
            return redirect
        form = await request.form()
        compare = str(form.get("compare_layer_id") or "")
        body: dict[str, Any] = {}
        if form.get("analysis") == jobs.LAND_ACCOUNT:
            body = {"analysis": jobs.LAND_ACCOUNT}
            if compare.isdigit():
                body["compare_layer_id"] = int(compare)
            check_plans(engine, layer_id, None, body.get("compare_layer_id"), None)
        job_id = await run_in_threadpool(jobs.create_job, engine, layer_id, body)
        background.add_task(jobs.run_job, engine, job_id)
        return RedirectResponse(f"/planer/analyser/{job_id}", status_code=303)

    @router.get("/planer/analyser/{job_id:int}", response_class=HTMLResponse)
    def plan_job(request: Request, job_id: int, engine: EngineDep) -> Response:
        if (redirect := _signed_in(request)) is not None:
            return redirect
        job = jobs.get_job(engine, job_id)
        response = _render(request, "plan_job.html", job=job, job_id=job_id)
        if job["status"] in ("queued", "running"):
            response.headers["Refresh"] = "2"  # no script needed to follow the progress
        return response

    # --- ecologist ------------------------------------------------------------------------
    @router.get("/restaurering", response_class=HTMLResponse)
    def restoration_page(
        request: Request,
        engine: EngineDep,
        region: RegionQuery = "NO",
    ) -> Response:
        if (redirect := _signed_in(request)) is not None:
            return redirect
        from analyses import restoration

        error = None
        progress: dict[str, Any] | None = None
        series: list[dict[str, Any]] = []
        try:
            progress = restoration.progress(engine, region=region)
            series = [
                r for r in restoration.timeseries(engine, region=region) if r["ecosystem"] == "all"
            ]
        except GeoServiceError as exc:
            error = exc.detail
        projects, total = restoration.list_projects(engine, limit=100, offset=0)
        return _render(
            request,
            "restoration.html",
            status_code=422 if error and "baseline" not in error else 200,
            region=region,
            progress=progress,
            chart=_chart(series, restoration.targets()),
            projects=projects,
            total=total,
            error=error,
            statuses=codelists.load("restoration_status").rows,
            ecosystems=codelists.load("ecosystem_type").rows,
        )

    @router.get("/restaurering/{project_id:int}", response_class=HTMLResponse)
    def project_page(request: Request, project_id: int, engine: EngineDep) -> Response:
        if (redirect := _signed_in(request)) is not None:
            return redirect
        from analyses import restoration

        return _render(
            request,
            "project.html",
            project=restoration.get_project(engine, project_id),
            history=restoration.project_history(engine, project_id),
            statuses=codelists.load("restoration_status").rows,
        )

    @router.post("/restaurering/{project_id:int}/status")
    def project_status(
        request: Request,
        project_id: int,
        engine: EngineDep,
        settings: SettingsDep,
        status: Annotated[str, Form(max_length=40)],
        date: Annotated[str, Form(max_length=10)],
    ) -> Response:
        if (redirect := _signed_in(request, "ecologist")) is not None:
            return redirect
        from analyses import restoration

        who = principal_of(request)
        restoration.add_status(
            engine,
            project_id,
            status,
            date,
            srid=settings.storage_srid,
            user=who.user if who else None,
            may_change_any=bool(who and who.role == "admin"),
        )
        return RedirectResponse(f"/restaurering/{project_id}", status_code=303)

    @router.get("/restaurering/ny", response_class=HTMLResponse)
    def project_new(request: Request) -> Response:
        if (redirect := _signed_in(request, "ecologist")) is not None:
            return redirect
        return _project_form(request, {"status": "initiated"}, {})

    @router.post("/restaurering/ny", response_class=HTMLResponse)
    async def project_create(
        request: Request, engine: EngineDep, settings: SettingsDep
    ) -> Response:
        if (redirect := _signed_in(request, "ecologist")) is not None:
            return redirect
        from analyses import restoration

        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        lang = _lang(request)
        try:
            if not values.get("footprint"):
                raise InvalidInput(t("web.no_project_area", lang), code="no_footprint")
            geometry = _multipolygon(json.loads(values["footprint"]))
            check_request_geometry(geometry, settings.geometry_limits, "project")
            who = principal_of(request)
            saved = await run_in_threadpool(
                restoration.save_project,
                engine,
                {
                    "name": values.get("name") or None,
                    "ecosystem_type": values.get("ecosystem_type"),
                    "status_history": [
                        {"status": values.get("status"), "date": values.get("date")}
                    ],
                },
                geometry,
                crs="EPSG:4326",
                srid=settings.storage_srid,
                user=who.user if who else None,
            )
        except (GeoServiceError, json.JSONDecodeError) as exc:
            detail = exc.detail if isinstance(exc, GeoServiceError) else str(exc)
            return _project_form(request, values, {"footprint": detail})
        return RedirectResponse(f"/restaurering?ny={saved['id']}", status_code=303)

    return router


def _project_form(request: Request, values: dict[str, Any], errors: dict[str, str]) -> HTMLResponse:
    state = request.app.state
    return _render(
        request,
        "project_new.html",
        status_code=422 if errors else 200,
        values=values,
        errors=errors,
        ecosystems=codelists.load("ecosystem_type").rows,
        statuses=codelists.load("restoration_status").rows,
        basemap=_basemap(state.settings),
        land_tiles=_land_cover_tiles(state.engine),
    )


def _multipolygon(drawn: dict[str, Any]) -> dict[str, Any]:
    """The drawn polygons (a FeatureCollection) as one MultiPolygon."""
    polygons: list[Any] = []
    for feature in drawn.get("features", []):
        geometry = feature.get("geometry") or {}
        if geometry.get("type") == "Polygon":
            polygons.append(geometry["coordinates"])
        elif geometry.get("type") == "MultiPolygon":
            polygons.extend(geometry["coordinates"])
    return {"type": "MultiPolygon", "coordinates": polygons}


CHART_W, CHART_H, CHART_PAD = 640, 260, 40


def _chart(series: list[dict[str, Any]], goals: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The yearly share under restoration as SVG coordinates, with the target lines."""
    if not series:
        return None
    years = [int(r["year"]) for r in series]
    first, last = min(years), max(max(years), *(int(g["year"]) for g in goals))
    top = max(0.35, *(float(r["share"]) for r in series))

    def x(year: float) -> float:
        span = max(last - first, 1)
        return round(CHART_PAD + (year - first) / span * (CHART_W - 2 * CHART_PAD), 1)

    def y(share: float) -> float:
        return round(CHART_H - CHART_PAD - share / top * (CHART_H - 2 * CHART_PAD), 1)

    return {
        "width": CHART_W,
        "height": CHART_H,
        "points": " ".join(f"{x(int(r['year']))},{y(float(r['share']))}" for r in series),
        "dots": [
            {
                "x": x(int(r["year"])),
                "y": y(float(r["share"])),
                "year": r["year"],
                "share": float(r["share"]),
            }
            for r in series
        ],
        "targets": [
            {
                "y": y(float(g["share"])),
                "label": f"{round(float(g['share']) * 100)} % {g['year']}",
                "x": x(int(g["year"])),
            }
            for g in goals
        ],
        "x0": CHART_PAD,
        "x1": CHART_W - CHART_PAD,
        "base": CHART_H - CHART_PAD,
        "first": first,
        "last": last,
    }


def _local(target: str) -> str:
    """Only a path of this service may follow sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
