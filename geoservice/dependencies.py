"""Small FastAPI dependencies shared by the routers."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from geoservice.settings import Settings


async def get_engine(request: Request) -> Engine:
    """The lifespan-owned engine (an async function: FastAPI then resolves it on the event
    loop instead of sending every request through the thread pool for it)."""
    engine: Engine = request.app.state.engine
    return engine


async def get_async_engine(request: Request) -> AsyncEngine:
    """The lifespan-owned engine of the async read path."""
    engine: AsyncEngine = request.app.state.async_engine
    return engine


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


# Ids and counts are PostgreSQL integers: a bigger number is a wrong address (422), not a
# database error.
MAX_INT = 2_147_483_647
Id = Annotated[int, Path(ge=1, le=MAX_INT)]
Limit = Annotated[int, Query(ge=1, le=MAX_INT, description="Items per page (capped)")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="Items to skip")]
VersionQuery = Annotated[
    int | None, Query(ge=1, le=MAX_INT, description="Layer version; default active")
]
# Restoration is tracked from 1900 to 2100; other dates are typing errors.
EARLIEST, LATEST = date(1900, 1, 1), date(2100, 12, 31)
AsOfQuery = Annotated[
    date | None, Query(ge=EARLIEST, le=LATEST, description="Date (default today)")
]
RegionQuery = Annotated[
    str,
    Query(
        max_length=80,
        description="kommunenummer, fylkesnummer, a kommune or fylke name (Ås) or NO",
    ),
]

EngineDep = Annotated[Engine, Depends(get_engine)]
AsyncEngineDep = Annotated[AsyncEngine, Depends(get_async_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def page(request: Request, items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """One page of a listing, with self/next/prev links, the same for every listing."""
    links = [{"rel": "self", "href": str(request.url)}]
    if offset + limit < total:
        links.append(
            {"rel": "next", "href": str(request.url.include_query_params(offset=offset + limit))}
        )
    if offset > 0:
        previous = max(0, offset - limit)
        links.append(
            {"rel": "prev", "href": str(request.url.include_query_params(offset=previous))}
        )
    return {"items": items, "total": total, "limit": limit, "offset": offset, "links": links}
