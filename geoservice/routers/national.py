"""``/api/national``: every kommune at once on Dask, as a job with progress."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, status
from pydantic import BaseModel, Field

from analyses import national
from analyses.presets import DEFAULT_PRESET, PRESETS
from geoservice.dependencies import EngineDep, Id, SettingsDep
from geoservice.models import NationalRun, NationalRunQueued
from geoservice.security import EcologistDep, PlannerDep, ReaderDep, audit_note
from geoservice.settings import Settings


class NationalLandAccountIn(BaseModel):
    """Which plans, and how the reserve is valued (as for one plan's land account)."""

    plan_layers: list[int] | None = Field(
        default=None,
        max_length=1000,
        description="Plan layer ids; default every active land_use_plan layer",
    )
    preset: str = Field(default=DEFAULT_PRESET, description=", ".join(PRESETS))
    peat_handling: Literal["excavated", "drained", "filled"] = "drained"
    peat_excavated_share: float | None = Field(default=None, ge=0, le=1)


class NationalRestorationIn(BaseModel):
    """The day measured."""

    as_of: date | None = Field(default=None, description="Default today")


def _execute(settings: Settings, engine: Any, run_id: int) -> None:
    """The run in the background, on the configured cluster (or a local one)."""
    where, timeout = settings.dask_scheduler, settings.dask_connect_timeout_s
    try:
        with national.dask_client(where, settings.dask_workers, timeout) as client:
            national.execute_run(engine, run_id, client)
    except national.SchedulerUnreachable as exc:  # nothing ran: the run's row says why
        national.fail_run(engine, run_id, str(exc))
    except Exception:  # the run marked itself failed, with the reason; the service goes on
        return


def national_router() -> APIRouter:
    """Build the national-runs router."""
    router = APIRouter(prefix="/api/national", tags=["national runs"])

    def _queue(
        request: Request,
        kind: str,
        body: dict[str, Any],
        who: Any,
        engine: Any,
        settings: Settings,
        background: BackgroundTasks,
    ) -> dict[str, Any]:
        run_id = national.create_run(engine, kind, {**body, "via": "api"}, who.user)
        background.add_task(_execute, settings, engine, run_id)
        audit_note(request, analysis_id=run_id)
        return {"id": run_id, "status": "queued", "href": f"/api/national/runs/{run_id}"}

    @router.post(
        "/arealregnskap",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=NationalRunQueued,
        summary="The arealreserve of every kommune with the carbon at stake (a Dask run)",
    )
    def land_account_run(
        request: Request,
        body: NationalLandAccountIn,
        engine: EngineDep,
        settings: SettingsDep,
        background: BackgroundTasks,
        who: PlannerDep,
    ) -> Any:
        """Queued on the Dask cluster of ``GEOSERVICE_DASK_SCHEDULER`` (or a local one);
        poll ``href``."""
        return _queue(
            request, "arealregnskap", body.model_dump(), who, engine, settings, background
        )

    @router.post(
        "/restoration",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=NationalRunQueued,
        summary="Restoration progress of every kommune and fylke (a Dask run)",
    )
    def restoration_run(
        request: Request,
        body: NationalRestorationIn,
        engine: EngineDep,
        settings: SettingsDep,
        background: BackgroundTasks,
        who: EcologistDep,
    ) -> Any:
        """Queued like the land account's national run; poll ``href``."""
        data = {"as_of": body.as_of.isoformat() if body.as_of else None}
        return _queue(request, "restoration", data, who, engine, settings, background)

    @router.get("/runs", summary="National runs, newest first")
    def runs(
        engine: EngineDep,
        _: ReaderDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[dict[str, Any]]:
        return national.list_runs(engine, limit)

    @router.get(
        "/runs/{run_id}",
        response_model=NationalRun,
        summary="A national run: progress, provenance, per-task times and results per region",
    )
    def run(
        run_id: Id,
        engine: EngineDep,
        _: ReaderDep,
        limit: Annotated[int, Query(ge=1, le=1000)] = 400,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        """Results are paged (``limit``/``offset``; ``regions_total`` counts them)."""
        return national.run_result(engine, run_id, limit=limit, offset=offset)

    return router
