"""Engine construction and the few queries that describe the database itself."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.database import sqlalchemy_url
from geoservice.embedded import EmbeddedCluster
from geoservice.settings import Settings


def embedded_cluster(settings: Settings) -> EmbeddedCluster:
    """The embedded cluster that belongs to these settings' data directory."""
    return EmbeddedCluster(settings.data_path / "postgres", bin_dir=settings.pg_bin_dir)


def resolve_database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when given, else the embedded cluster's URL (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return embedded_cluster(settings).start()


def _engine_options(settings: Settings) -> dict[str, object]:
    # JIT off: PostGIS functions carry high costs, so PostgreSQL compiles even a one-tile
    # query, and the compiling took longer than the query (2.1 of 4.1 s for a z12 tile).
    # A parallel worker is a new backend that loads PostGIS and PROJ before its first
    # transform (tens of ms): a high set-up cost keeps small queries (a z15 tile, one
    # proposal) in one process and lets big ones (a z8 or z12 tile) spread.
    options = (
        f"-c statement_timeout={settings.db_statement_timeout_ms} -c jit=off"
        " -c parallel_setup_cost=100000"
    )
    if settings.db_client_check_ms:
        options += f" -c client_connection_check_interval={settings.db_client_check_ms}"
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_pool_size,
        "pool_pre_ping": True,
        "pool_timeout": 10,
        "connect_args": {
            "options": options,
            "connect_timeout": 5,
            "application_name": "geoservice",
        },
    }


def create_db_engine(url: str, settings: Settings | None = None) -> Engine:
    """A pooled engine that checks connections before use, so a PostGIS restart heals itself."""
    return create_engine(sqlalchemy_url(url), **_engine_options(settings or Settings()))


def create_async_db_engine(url: str, settings: Settings | None = None) -> AsyncEngine:
    """The same pool for the read path that runs on the event loop (OGC API and tiles): no
    request waits for a thread to become free while another waits for the database."""
    return create_async_engine(sqlalchemy_url(url), **_engine_options(settings or Settings()))


@dataclass(frozen=True)
class DatabaseInfo:
    """What the health check reports about the database."""

    reachable: bool
    postgresql: str | None = None
    postgis: str | None = None
    schema_revision: str | None = None
    error: str | None = None


def database_info(engine: Engine) -> DatabaseInfo:
    """Versions and schema revision, or why the database could not be asked."""
    try:
        with engine.connect() as conn:
            pg = conn.execute(text("SHOW server_version")).scalar_one()
            postgis = conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
            ).scalar_one_or_none()
            has_version_table = conn.execute(
                text("SELECT to_regclass('public.alembic_version') IS NOT NULL")
            ).scalar_one()
            revision = (
                conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar()
                if has_version_table
                else None
            )
    except SQLAlchemyError as exc:
        return DatabaseInfo(
            reachable=False, error=str(exc.__cause__ or exc).strip().splitlines()[0]
        )
    return DatabaseInfo(
        reachable=True,
        postgresql=str(pg).split()[0],
        postgis=str(postgis) if postgis else None,
        schema_revision=str(revision) if revision else None,
    )
