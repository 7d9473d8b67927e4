"""``/healthz``: is the service usable, and on what database?"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from core import __version__
from geoservice.database import database_info
from geoservice.dependencies import EngineDep, SettingsDep
from geoservice.migrate import head_revision
from geoservice.security import principal_of


class DatabaseHealth(BaseModel):
    """Database part of the health report."""

    reachable: bool
    postgresql: str | None
    postgis: str | None
    schema_revision: str | None
    schema_head: str
    schema_up_to_date: bool
    error: str | None = None


class Health(BaseModel):
    """The whole health report; versions only for callers who may read (with private reads
    an anonymous monitor learns whether the service works, not what it runs on)."""

    status: str
    version: str | None = None
    database: DatabaseHealth | None = None


def health_router() -> APIRouter:
    """Build the health router."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        response_model=Health,
        responses={503: {"model": Health, "description": "The database is unreachable"}},
        summary="Service and database health",
    )
    def healthz(request: Request, engine: EngineDep, settings: SettingsDep) -> JSONResponse:
        """Report database reachability, PostgreSQL/PostGIS versions and the schema revision."""
        info = database_info(engine)
        head = head_revision()
        db = DatabaseHealth(
            reachable=info.reachable,
            postgresql=info.postgresql,
            postgis=info.postgis,
            schema_revision=info.schema_revision,
            schema_head=head,
            schema_up_to_date=info.schema_revision == head,
            error=info.error,
        )
        healthy = info.reachable and info.postgis is not None
        status_text = (
            "ok" if healthy and db.schema_up_to_date else ("degraded" if healthy else "down")
        )
        if principal_of(request) is None and not settings.public_reads:
            body = Health(status=status_text)
        else:
            body = Health(status=status_text, version=__version__, database=db)
        return JSONResponse(
            body.model_dump(exclude_none=body.database is None),
            status_code=200 if healthy else 503,
        )

    return router
