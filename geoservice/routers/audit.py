"""``/api/audit``: the log of every write, for administrators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from geoservice.access import audit_entries
from geoservice.dependencies import EngineDep, Limit, Offset, SettingsDep, page
from geoservice.security import AdminDep


def audit_router() -> APIRouter:
    """Build the audit log router."""
    router = APIRouter(prefix="/api/audit", tags=["audit"])

    @router.get("", summary="Who changed what, when (admins)")
    def audit(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        who: AdminDep,
        user: Annotated[str | None, Query(description="Only this user's writes")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        limit = min(limit, settings.max_page_size)
        items, total = audit_entries(engine, limit=limit, offset=offset, user=user)
        return page(request, items, total, limit, offset)

    return router
