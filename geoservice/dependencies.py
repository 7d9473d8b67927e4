"""Small FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine

from geoservice.settings import Settings


def get_engine(request: Request) -> Engine:
    """The lifespan-owned engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
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
