"""``/api/restoration``: the restoration registry and progress towards the targets."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from analyses import restoration
from geoservice.dependencies import (
    EARLIEST,
    LATEST,
    AsOfQuery,
    EngineDep,
    Id,
    Limit,
    Offset,
    RegionQuery,
    SettingsDep,
    page,
)
from geoservice.models import Page, Progress, Project, ProjectHistory, ProjectImport
from geoservice.routers.layers import save_upload
from geoservice.security import EcologistDep, ReaderDep, audit_note
from layers.geometry_limits import check_request_geometry
from layers.reader import features_from_file


class ProjectIn(BaseModel):
    """A restoration project: attributes after FAO FERM [fao-ferm-2024], geometry as GeoJSON."""

    geometry: dict[str, Any] = Field(description="GeoJSON Polygon/MultiPolygon/Feature")
    crs: str = Field(default="EPSG:4326", description="CRS of the coordinates")
    properties: dict[str, Any] = Field(
        description="name, ecosystem_type, status_history [{status, date}], degradation_driver, "
        "restoration_type, methods, quantities, responsible_org, funding, monitoring_notes, "
        "external_ids, counts_toward"
    )


class AreaIn(BaseModel):
    """A polygon to measure restoration progress in."""

    geometry: dict[str, Any] = Field(description="GeoJSON Polygon/MultiPolygon/Feature")
    crs: str = Field(default="EPSG:4326")
    ecosystem: str | None = None
    as_of: date | None = Field(default=None, ge=EARLIEST, le=LATEST)


def restoration_router() -> APIRouter:
    """Build the restoration router."""
    router = APIRouter(prefix="/api/restoration", tags=["restoration"])

    @router.post(
        "/projects",
        status_code=status.HTTP_201_CREATED,
        summary="Register a project",
        response_model=Project,
    )
    def create(
        request: Request,
        body: ProjectIn,
        engine: EngineDep,
        settings: SettingsDep,
        who: EcologistDep,
    ) -> Any:
        """Store a new project (its first version)."""
        check_request_geometry(body.geometry, settings.geometry_limits, "project")
        saved = restoration.save_project(
            engine,
            body.properties,
            body.geometry,
            crs=body.crs,
            srid=settings.storage_srid,
            user=who.user,
        )
        audit_note(request, project_id=saved["id"], version_after=saved["version"])
        return saved

    @router.post(
        "/projects/import",
        status_code=status.HTTP_201_CREATED,
        summary="Register every feature of a file as a project (all or nothing)",
        response_model=ProjectImport,
    )
    def import_file(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        who: EcologistDep,
        file: Annotated[UploadFile, File(description="GeoJSON, GeoPackage, zipped Shapefile, ...")],
        crs: Annotated[str | None, Form(description="CRS if the file does not say")] = None,
        layer: Annotated[str | None, Form(description="Layer inside a GeoPackage")] = None,
    ) -> Any:
        """Attributes: navn/name, okosystem/ecosystem_type, status + status_date (or a
        status_history JSON column), and any other project field."""
        uploads = settings.data_path / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=uploads) as workdir:
            path, _, shown = save_upload(file, settings, Path(workdir))
            features, crs_label = features_from_file(
                path,
                Path(workdir),
                layer=layer or None,
                crs=crs or None,
                max_unzipped_bytes=settings.max_upload_bytes,
                max_features=settings.max_upload_features,
                display_name=shown,
            )
        for number, (geometry, _) in enumerate(features, start=1):
            check_request_geometry(geometry, settings.geometry_limits, f"feature {number}'s")
        ids = restoration.import_projects(
            engine, features, crs=crs_label, srid=settings.storage_srid, user=who.user
        )
        audit_note(request, project_ids=ids)
        return {"imported": len(ids), "ids": ids}

    @router.get(
        "/projects",
        summary="The registry (now, or as it stood at a time)",
        response_model=Page[Project],
    )
    def list_projects(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        limit: Limit = 100,
        offset: Offset = 0,
        recorded_as_of: Annotated[
            datetime | None,
            Query(
                description="ISO 8601 time, e.g. 2025-06-01T12:00:00+02:00: the registry "
                "as it stood then"
            ),
        ] = None,
    ) -> Any:
        """Projects, paged."""
        limit = min(limit, settings.max_page_size)
        items, total = restoration.list_projects(
            engine, limit=limit, offset=offset, recorded_as_of=recorded_as_of
        )
        return page(request, items, total, limit, offset)

    @router.get("/projects/{project_id}", summary="One project", response_model=Project)
    def read(project_id: Id, engine: EngineDep) -> Any:
        """The current state of a project."""
        return restoration.get_project(engine, project_id)

    @router.put(
        "/projects/{project_id}",
        summary="Change a project (a new version)",
        response_model=Project,
    )
    def update(
        request: Request,
        project_id: Id,
        body: ProjectIn,
        engine: EngineDep,
        settings: SettingsDep,
        who: EcologistDep,
    ) -> Any:
        """Record the project's new state; earlier versions stay in its history."""
        check_request_geometry(body.geometry, settings.geometry_limits, "project")
        before = restoration.get_project(engine, project_id)["version"]
        saved = restoration.save_project(
            engine,
            body.properties,
            body.geometry,
            crs=body.crs,
            srid=settings.storage_srid,
            user=who.user,
            project_id=project_id,
            may_change_any=who.role == "admin",
        )
        audit_note(request, version_before=before, version_after=saved["version"])
        return saved

    @router.delete(
        "/projects/{project_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Delete a project (kept in history)",
    )
    def delete(request: Request, project_id: Id, engine: EngineDep, who: EcologistDep) -> None:
        """Mark the project deleted: it leaves the registry and the figures, its history
        stays, and ``POST .../restore`` brings it back. Only the user who registered it, or
        an administrator, may delete it."""
        before = restoration.get_project(engine, project_id)["version"]
        after = restoration.delete_project(
            engine, project_id, user=who.user, may_change_any=who.role == "admin"
        )
        audit_note(request, version_before=before, version_after=after)

    @router.post(
        "/projects/{project_id}/restore",
        summary="Bring a deleted project back (a new version)",
        response_model=Project,
    )
    def restore(request: Request, project_id: Id, engine: EngineDep, who: EcologistDep) -> Any:
        """The project as it was before it was deleted, recorded as a new version."""
        restored = restoration.restore_project(
            engine, project_id, user=who.user, may_change_any=who.role == "admin"
        )
        audit_note(request, version_after=restored["version"])
        return restored

    @router.get(
        "/projects/{project_id}/history",
        summary="Every version of a project",
        response_model=ProjectHistory,
    )
    def history(project_id: Id, engine: EngineDep) -> Any:
        """Who changed what, when."""
        return {"id": project_id, "versions": restoration.project_history(engine, project_id)}

    @router.get(
        "/progress",
        summary="Progress towards Target 2 and the national target",
        response_model=Progress,
    )
    def progress(
        engine: EngineDep,
        region: RegionQuery = "NO",
        ecosystem: Annotated[str | None, Query(description="ecosystem type code")] = None,
        as_of: AsOfQuery = None,
    ) -> Any:
        """Baseline, area under restoration, share, pace and projection for each target."""
        return restoration.progress(engine, region=region, ecosystem=ecosystem, as_of=as_of)

    @router.post("/progress", summary="Progress inside a drawn polygon", response_model=Progress)
    def progress_in_polygon(
        body: AreaIn, engine: EngineDep, settings: SettingsDep, who: ReaderDep
    ) -> Any:
        """Like GET /progress, for any polygon instead of a kommune or fylke."""
        check_request_geometry(body.geometry, settings.geometry_limits, "area")
        return restoration.progress(
            engine,
            ecosystem=body.ecosystem,
            as_of=body.as_of,
            area=(body.geometry, body.crs, settings.storage_srid),
        )

    @router.get("/timeseries", summary="Area under restoration per year and ecosystem type")
    def timeseries(
        engine: EngineDep,
        region: RegionQuery = "NO",
        start_year: Annotated[int | None, Query(ge=1900, le=2100)] = None,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    ) -> Any:
        """From the baseline year to today: baseline, area under restoration and share."""
        rows = restoration.timeseries(engine, region=region, start_year=start_year)
        if format == "csv":
            return PlainTextResponse(
                restoration.timeseries_csv(rows), media_type="text/csv; charset=utf-8"
            )
        return {"region": region, "series": rows}

    return router
