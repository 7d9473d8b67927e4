"""``/api/plans/{id}/land-account``: the arealregnskap of a plan as a job, and its workbook."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from analyses import jobs
from analyses import presets as presets_module
from analyses.land_account import check_plans
from analyses.presets import DEFAULT_PRESET, PRESETS
from core.errors import InvalidInput
from geoservice.dependencies import EngineDep, Id
from geoservice.models import PlanJobQueued
from geoservice.routers.carbon import ReportDep
from geoservice.security import PlannerDep, audit_note
from maps.land_account_report import land_account_report
from maps.pdf import html_to_pdf

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class LandAccountIn(BaseModel):
    """What the account is of, and what it is compared with."""

    version: int | None = Field(
        default=None, ge=1, description="Version of the plan layer; default the active one"
    )
    compare_layer_id: int | None = Field(
        default=None,
        ge=1,
        description="The plan in force (or this layer, with compare_version) for the change table",
    )
    compare_version: int | None = Field(default=None, ge=1)
    dwellings_per_daa: dict[str, float] = Field(
        default_factory=dict,
        description='Planned dwellings per daa by arealformål, e.g. {"1110": 2.0}',
    )
    preset: str = Field(default=DEFAULT_PRESET, description=", ".join(PRESETS))
    peat_handling: Literal["excavated", "drained", "filled"] = "drained"
    peat_excavated_share: float | None = Field(default=None, ge=0, le=1)


def land_account_router() -> APIRouter:
    """Build the land-account router."""
    router = APIRouter(prefix="/api/plans", tags=["land account"])

    @router.post(
        "/{layer_id}/land-account",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Arealregnskap of a plan: status, reserve and change, with carbon (a job)",
        response_model=PlanJobQueued,
    )
    def land_account(
        request: Request,
        layer_id: Id,
        body: LandAccountIn,
        engine: EngineDep,
        background: BackgroundTasks,
        who: PlannerDep,
    ) -> Any:
        """Queue the account; poll ``href`` for progress and the result, and fetch
        ``href`` + ``/arealregnskap.xlsx`` for the workbook."""
        for code, density in body.dwellings_per_daa.items():
            if not (code.isdigit() and len(code) == 4):
                raise InvalidInput(
                    f"dwellings_per_daa is keyed by four-digit arealformål codes (got {code!r}), "
                    'e.g. {"1110": 2.0}.',
                    code="bad_density",
                )
            if not 0 <= density <= 100:
                raise InvalidInput(
                    f"dwellings_per_daa for {code} is {density}; give 0–100 dwellings per daa.",
                    code="bad_density",
                )
        presets_module.stored_preset(engine, body.preset)
        check_plans(engine, layer_id, body.version, body.compare_layer_id, body.compare_version)
        job_id = jobs.create_job(
            engine, layer_id, {"analysis": jobs.LAND_ACCOUNT, **body.model_dump()}
        )
        background.add_task(jobs.run_job, engine, job_id)
        audit_note(request, analysis_id=job_id)
        return {"id": job_id, "status": "queued", "href": f"/api/plans/analyses/{job_id}"}

    @router.get(
        "/analyses/{job_id}/arealregnskap.xlsx",
        summary="The land account as an Excel workbook (Status, Arealreserve, Endringer, Kilder)",
        response_class=Response,
        responses={200: {"content": {XLSX: {}}}},
    )
    def land_account_xlsx(
        job_id: Id,
        engine: EngineDep,
        lang: Annotated[Literal["nb", "en"], Query(description="nb (default) or en")] = "nb",
    ) -> Response:
        """Made from the finished job's result."""
        from maps.land_account_xlsx import land_account_workbook

        account = jobs.land_account_result(engine, job_id)
        data = land_account_workbook(account, lang)
        return Response(
            data,
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="arealregnskap-{job_id}.xlsx"'},
        )

    @router.get(
        "/analyses/{job_id}/arealregnskap",
        summary="The land account as a printable report (bokmål; lang=en for English)",
        response_class=HTMLResponse,
    )
    def land_account_html(
        request: Request, job_id: Id, engine: EngineDep, options: ReportDep
    ) -> HTMLResponse:
        """Case details, status, the reserve ranked by carbon at stake, the change, method
        and references; ``.pdf`` for the same as PDF."""
        lang, case, _ = options
        pdf = request.url.replace(path=request.url.path + ".pdf")
        href = f"{pdf.path}?{pdf.query}" if pdf.query else pdf.path
        account = jobs.land_account_result(engine, job_id)
        return HTMLResponse(land_account_report(account, lang=lang, case=case, pdf_href=href))

    @router.get(
        "/analyses/{job_id}/arealregnskap.pdf",
        summary="The land account report as PDF",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}},
    )
    def land_account_pdf(job_id: Id, engine: EngineDep, options: ReportDep) -> Response:
        """The printable report, laid out as PDF (no browser, nothing fetched)."""
        lang, case, _ = options
        account = jobs.land_account_result(engine, job_id)
        data = html_to_pdf(land_account_report(account, lang=lang, case=case))
        return Response(
            data,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="arealregnskap-{job_id}.pdf"'},
        )

    return router
