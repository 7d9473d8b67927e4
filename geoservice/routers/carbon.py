"""``/api/proposals`` and ``/api/carbon``: assess building proposals; factor tables, presets."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    File,
    Form,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from analyses import factors, jobs
from analyses import presets as presets_module
from analyses.assessment import ProposalRequest, assess, get_proposal, registry
from analyses.invest import invest_export
from analyses.presets import DEFAULT_PRESET, PRESETS
from analyses.tables import to_csv
from core.errors import PayloadTooLarge
from geoservice.dependencies import EngineDep, Id, Limit, Offset, SettingsDep, page
from geoservice.models import (
    Page,
    PlanJob,
    PlanJobQueued,
    Proposal,
    ProposalRename,
    ProposalSummary,
)
from geoservice.security import AdminDep, PlannerDep, audit_note
from geoservice.settings import Settings
from layers.geometry_limits import check_request_geometry
from maps.pdf import html_to_pdf
from maps.report import CaseFields, proposal_report

MAX_TABLE_BYTES = 5 * 1024 * 1024


class ProposalIn(BaseModel):
    """A building proposal to assess."""

    name: str | None = Field(default=None, description="Your name for the proposal")
    footprint: dict[str, Any] = Field(
        description="GeoJSON Polygon/MultiPolygon, Feature or FeatureCollection"
    )
    crs: str = Field(default="EPSG:4326", description="CRS of the coordinates (RFC 7946 default)")
    arealformal: int = Field(description="Planned arealformål, e.g. 1110 boligbebyggelse")
    built_share: float | None = Field(
        default=None, ge=0, le=1, description="Share of the site built over; default per formål"
    )
    preset: str = Field(default=DEFAULT_PRESET, description=", ".join(PRESETS))
    peat_handling: Literal["excavated", "drained", "filled"] = Field(
        default="drained",
        description="Peat left in place under the built part: drained or under fill (emits at "
        "the drained-peat factor over the preset's horizon); 'excavated' means all of it is "
        "dug out and removed",
    )
    peat_excavated_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of the built mire excavated and removed (masseutskifting), which "
        "loses its whole stock at once; echoed in the result",
    )
    alternatives: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Named alternative footprints (GeoJSON)"
    )


class PresetIn(BaseModel):
    """A method preset: loss shares and horizon, with the source that justifies them."""

    name: str = Field(min_length=1, max_length=100)
    title: str
    horizon_years: int | None = Field(ge=1, le=200)
    mineral_soil_loss: float = Field(ge=0, le=1)
    mineral_soil_immediate: bool
    peat_stock_method: bool
    source: str = Field(min_length=1)


class PlanAnalysisIn(BaseModel):
    """Choices for a plan-level analysis."""

    preset: str = Field(default=DEFAULT_PRESET, description=", ".join(PRESETS))
    peat_handling: Literal["excavated", "drained", "filled"] = "drained"
    peat_excavated_share: float | None = Field(default=None, ge=0, le=1)
    rezone: list[int] = Field(
        default_factory=list, description="Feature ids of zones to return to LNFR (scenario)"
    )


CaseText = Annotated[
    str | None,
    Query(max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$", description="Printed as given"),
]


def report_options(
    lang: Annotated[
        Literal["nb", "en"], Query(description="nb (bokmål, default) or en (English)")
    ] = "nb",
    saksnummer: CaseText = None,
    saksbehandler: CaseText = None,
    dato: CaseText = None,
    plan_id: CaseText = None,
    bakgrunn: Annotated[
        bool, Query(description="Draw land cover behind the footprints (default yes)")
    ] = True,
) -> tuple[Literal["nb", "en"], CaseFields, bool]:
    """What the planner chooses for a report: language, case fields and map background."""
    return lang, CaseFields(saksnummer, saksbehandler, dato, plan_id), bakgrunn


ReportOptions = tuple[Literal["nb", "en"], CaseFields, bool]
ReportDep = Annotated[ReportOptions, Depends(report_options)]


def report_html(
    engine: Engine,
    settings: Settings,
    proposal_id: int,
    options: ReportOptions,
    *,
    pdf_href: str | None = None,
) -> str:
    """The report as the planner chose it (the HTML page and the PDF are the same)."""
    lang, case, background = options
    return proposal_report(
        engine,
        proposal_id,
        storage_srid=settings.storage_srid,
        lang=lang,
        case=case,
        background=background,
        pdf_href=pdf_href,
    )


def carbon_router() -> APIRouter:
    """Build the carbon router."""
    router = APIRouter(tags=["carbon"])

    @router.post(
        "/api/proposals",
        status_code=status.HTTP_201_CREATED,
        summary="Assess a building proposal",
        response_model=Proposal,
    )
    def create_proposal(
        request: Request,
        body: ProposalIn,
        engine: EngineDep,
        settings: SettingsDep,
        who: PlannerDep,
    ) -> Any:
        """Carbon stock, emissions if built, what stays, flags and provenance; stored."""
        check_request_geometry(body.footprint, settings.geometry_limits, "proposal")
        for alt_name, alt in body.alternatives.items():
            check_request_geometry(alt, settings.geometry_limits, f"alternative {alt_name!r}")
        result = assess(
            engine,
            ProposalRequest(**body.model_dump()),
            storage_srid=settings.storage_srid,
            user=who.user,
        )
        audit_note(request, proposal_id=result["id"])
        return result

    @router.get(
        "/api/proposals",
        summary="Stored assessments, newest first (paged, searchable)",
        response_model=Page[ProposalSummary],
    )
    def list_proposals(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        q: Annotated[
            str | None, Query(max_length=200, description="Part of the name, or the id")
        ] = None,
        deleted: Annotated[bool, Query(description="List deleted proposals too")] = False,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        """Find a proposal again: by name, newest first."""
        limit = min(limit, settings.max_page_size)
        items, total = registry.list_proposals(
            engine, q=q, limit=limit, offset=offset, deleted=deleted
        )
        return page(request, items, total, limit, offset)

    @router.patch(
        "/api/proposals/{proposal_id}",
        summary="Rename a proposal",
        response_model=ProposalSummary,
    )
    def rename_proposal(
        request: Request, proposal_id: Id, body: ProposalRename, engine: EngineDep, who: PlannerDep
    ) -> Any:
        """The proposal with its new name."""
        renamed = registry.rename_proposal(engine, proposal_id, body.name)
        audit_note(request, name=renamed["name"])
        return renamed

    @router.delete(
        "/api/proposals/{proposal_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Delete a proposal (reversible)",
    )
    def delete_proposal(proposal_id: Id, engine: EngineDep, who: PlannerDep) -> None:
        """It leaves the list; POST .../restore brings it back as it was."""
        registry.delete_proposal(engine, proposal_id)

    @router.post(
        "/api/proposals/{proposal_id}/restore",
        summary="Bring a deleted proposal back",
        response_model=ProposalSummary,
    )
    def restore_proposal(proposal_id: Id, engine: EngineDep, who: PlannerDep) -> Any:
        """The proposal as it was before it was deleted."""
        return registry.restore_proposal(engine, proposal_id)

    @router.get(
        "/api/proposals/{proposal_id}", summary="A stored assessment", response_model=Proposal
    )
    def read_proposal(proposal_id: Id, engine: EngineDep) -> Any:
        """The result exactly as it was computed, with its provenance."""
        return get_proposal(engine, proposal_id)

    @router.get(
        "/api/proposals/{proposal_id}/csv",
        summary="An assessment as CSV (one row per footprint and land class)",
        response_class=PlainTextResponse,
    )
    def proposal_csv(proposal_id: Id, engine: EngineDep) -> PlainTextResponse:
        """Areas, stocks and emissions per class with the factor behind each, for a spreadsheet."""
        return PlainTextResponse(
            to_csv(get_proposal(engine, proposal_id)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="proposal-{proposal_id}.csv"'},
        )

    @router.post(
        "/api/plans/{layer_id}/analysis",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Analyse every building zone of a land-use plan (a job)",
        response_model=PlanJobQueued,
    )
    def plan_analysis(
        request: Request,
        layer_id: Id,
        body: PlanAnalysisIn,
        engine: EngineDep,
        background: BackgroundTasks,
        who: PlannerDep,
    ) -> Any:
        """Queue the analysis; poll the returned URL for progress and the result."""
        presets_module.stored_preset(engine, body.preset)  # refuse an unknown preset now
        job_id = jobs.create_job(engine, layer_id, body.model_dump())
        background.add_task(jobs.run_job, engine, job_id)
        audit_note(request, analysis_id=job_id)
        return {"id": job_id, "status": "queued", "href": f"/api/plans/analyses/{job_id}"}

    @router.get(
        "/api/plans/analyses/{job_id}",
        summary="Status and result of a plan analysis",
        response_model=PlanJob,
    )
    def plan_analysis_status(job_id: Id, engine: EngineDep) -> Any:
        """queued / running (with progress 0–1) / done (with the result) / failed (why)."""
        return jobs.get_job(engine, job_id)

    @router.get(
        "/api/proposals/{proposal_id}/report",
        summary="Printable report for a case document (bokmål; lang=en for English)",
        response_class=HTMLResponse,
    )
    def proposal_html(
        request: Request,
        proposal_id: Id,
        engine: EngineDep,
        settings: SettingsDep,
        options: ReportDep,
    ) -> HTMLResponse:
        """Summary, case fields, a map with scale bar and north arrow, tables with units and
        period, method and preset, and the full citation of every source used."""
        pdf = request.url.replace(path=request.url.path + ".pdf")
        href = f"{pdf.path}?{pdf.query}" if pdf.query else pdf.path
        return HTMLResponse(report_html(engine, settings, proposal_id, options, pdf_href=href))

    @router.get(
        "/api/proposals/{proposal_id}/report.pdf",
        summary="The same report as PDF, for the archive",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}},
    )
    async def proposal_pdf(
        proposal_id: Id, engine: EngineDep, settings: SettingsDep, options: ReportDep
    ) -> Response:
        """Rendered by WeasyPrint from the HTML report (A4)."""

        def render() -> bytes:
            return html_to_pdf(report_html(engine, settings, proposal_id, options))

        content = await run_in_threadpool(render)
        return Response(
            content,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="karbonvurdering-{proposal_id}.pdf"'
            },
        )

    @router.get(
        "/api/proposals/{proposal_id}/invest",
        summary="The assessment's inputs in InVEST Carbon format (zip)",
        response_class=Response,
    )
    def proposal_invest(
        proposal_id: Id,
        engine: EngineDep,
        settings: SettingsDep,
        resolution: Annotated[float, Query(description="Pixel size in metres")] = 10.0,
    ) -> Response:
        """carbon_pools.csv + an aligned integer LULC GeoTIFF in the storage CRS."""
        content = invest_export(
            engine, proposal_id, storage_srid=settings.storage_srid, resolution=resolution
        )
        return Response(
            content,
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="proposal-{proposal_id}-invest.zip"'
            },
        )

    @router.get("/api/carbon/presets", summary="Method presets")
    def presets(engine: EngineDep) -> Any:
        """Every stored version of every preset, with its source; the newest is used."""
        return {"default": DEFAULT_PRESET, "presets": presets_module.list_stored(engine)}

    @router.post(
        "/api/carbon/presets",
        status_code=status.HTTP_201_CREATED,
        summary="Store a new preset version",
    )
    def add_preset(request: Request, body: PresetIn, engine: EngineDep, who: AdminDep) -> Any:
        """A new version of a preset (or a new preset); assessments use the newest version."""
        stored = presets_module.store_preset(engine, body.model_dump(), uploader=who.user)
        audit_note(request, preset=stored.name, version_after=stored.version)
        return stored.describe()

    @router.get("/api/carbon/factor-tables", summary="Factor table versions")
    def tables(engine: EngineDep) -> Any:
        """Every stored factor table version; ``active`` marks the one in use."""
        return {"tables": factors.list_tables(engine)}

    @router.get("/api/carbon/factor-tables/{table_id}", summary="One factor table")
    def table(table_id: Id, engine: EngineDep) -> Any:
        """All rows with their sources, statuses and ranges."""
        t = factors.get_table(engine, table_id)
        return {**t.describe(), "factors": [asdict(f) for f in t.factors.values()]}

    @router.post(
        "/api/carbon/factor-tables",
        status_code=status.HTTP_201_CREATED,
        summary="Upload a factor table version",
    )
    async def upload_table(
        request: Request,
        engine: EngineDep,
        who: AdminDep,
        file: Annotated[UploadFile, File(description="CSV; ours or InVEST carbon_pools")],
        name: Annotated[str, Form(description="Table name; a known name gets a new version")],
        source: Annotated[str | None, Form(description="Source for rows without one")] = None,
    ) -> Any:
        """Validate the table and make it the active one."""
        content = await file.read(MAX_TABLE_BYTES + 1)
        if len(content) > MAX_TABLE_BYTES:
            raise PayloadTooLarge("A factor table is at most 5 MB.", code="upload_too_large")
        stored = await run_in_threadpool(
            factors.upload_table,
            engine,
            name,
            content,
            source=source,
            uploader=who.user,
            filename=file.filename,
        )
        audit_note(request, factor_table_id=stored.id, version_after=stored.version)
        return {**stored.describe(), "rows": len(stored.factors)}

    return router
