"""Service configuration, read from ``GEOSERVICE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from layers.geometry_limits import GeometryLimits

_ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class Settings(BaseSettings):
    """Everything the service needs to know about where it runs and where its data lives."""

    model_config = SettingsConfigDict(
        env_prefix="GEOSERVICE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GEOSERVICE_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="libpq URL postgresql://user:pass@host:port/db; unset = embedded PostGIS.",
    )
    data_dir: Path = Field(
        default=Path(".geoservice"),
        description="Embedded cluster, rasters and exports live here.",
    )
    storage_srid: int = Field(default=25833, description="CRS every geometry is stored in.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    migrate_on_start: bool = Field(
        default=True, description="Apply pending migrations when `serve` starts."
    )
    pg_bin_dir: Path | None = Field(
        default=None,
        description="PostgreSQL bin directory for the embedded cluster; found if unset.",
    )
    max_upload_mb: int = Field(default=2048, ge=1, description="Largest accepted upload.")
    max_upload_features: int = Field(
        default=5_000_000,
        ge=1,
        description="Most features one upload through the API may carry (413 beyond); the "
        "command line has no limit.",
    )
    max_json_mb: int = Field(
        default=16,
        ge=1,
        description="Largest JSON (or other non-upload) request body; checked before it is "
        "read (413 beyond).",
    )
    max_request_vertices: int = Field(
        default=100_000, ge=4, description="Most vertices a geometry sent in a request may have."
    )
    max_request_parts: int = Field(
        default=5_000, ge=1, description="Most polygons (or lines) in a request's geometry."
    )
    max_request_depth: int = Field(
        default=3, ge=0, description="Deepest nesting of GeometryCollections in a request."
    )
    max_repair_vertices: int = Field(
        default=5_000,
        ge=4,
        description="Most vertices of an invalid (self-crossing) geometry the service repairs; "
        "repair costs the square of the vertex count and cannot be interrupted.",
    )
    max_page_size: int = Field(default=1000, ge=1, description="Most items on one page.")
    db_pool_size: int = Field(default=10, ge=1)
    db_statement_timeout_ms: int = Field(default=60_000, ge=0)
    db_client_check_ms: int = Field(
        default=2000,
        ge=0,
        description="How often PostgreSQL checks that a client is still there during a long "
        "query, so a killed request stops its work (0 = off; needs PostgreSQL 14+).",
    )
    public_reads: bool = Field(
        default=False,
        description="Let anyone read (layers, maps, tiles, results) without a token. Writes "
        "always need a token with the right role.",
    )
    token_cache_s: float = Field(
        default=10.0,
        ge=0,
        description="How long a confirmed token is trusted without asking the database again; "
        "a revoked token stops working within this time (0 = ask every time).",
    )
    keep_alive_s: int = Field(
        default=65,
        ge=1,
        description="How long an idle HTTP connection stays open. Longer than clients' and "
        "proxies' own limits (5-60 s), so they close first and never send on a connection the "
        "service is closing.",
    )
    request_timeout_s: float = Field(
        default=300.0, ge=0, description="Longest a request may run before a 503 (0 = none)."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Browser origins allowed to call the API, e.g. ["https://kart.kommune.no"].',
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="The service's log lines: text, or one JSON object per line; each carries "
        "the request id (X-Request-ID).",
    )
    map_basemap: str = Field(
        default="kartverket",
        description="Map background: 'kartverket' (Kartverket's topographic tile cache), "
        "'none' (no request leaves the service), or a tile URL template with {z}/{x}/{y}.",
    )
    map_basemap_attribution: str = Field(
        default="", description="Attribution shown for a custom basemap URL."
    )
    map_inline_feature_limit: int = Field(
        default=5000,
        ge=0,
        description="Layers with more features than this are drawn from vector tiles.",
    )
    map_max_inline_mb: float = Field(
        default=2.0, gt=0, description="Most GeoJSON one map page may embed."
    )
    map_assets_dir: Path | None = Field(
        default=None,
        description="Where Leaflet is installed (npm); default maps/assets/node_modules.",
    )
    tile_cache: bool = Field(
        default=True,
        description="Keep vector tiles of (immutable) layer versions under data_dir/tiles.",
    )
    tile_cache_mb: int = Field(
        default=1024,
        ge=1,
        description="Most disk the tile cache may take; the oldest tiles go beyond it (empty "
        "tiles are never stored).",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of an existing Dask scheduler (tcp://host:8786) for national "
        "runs; without it a local cluster of dask_workers processes is started per run.",
    )
    dask_workers: int = Field(
        default=2, ge=1, le=256, description="Worker processes of the local Dask cluster."
    )
    dask_connect_timeout_s: float = Field(
        default=30.0, gt=0, description="How long to wait for the Dask scheduler to answer."
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        """Reject non-PostgreSQL URLs early, showing the expected form."""
        if value is None or not value.strip():
            return None
        scheme = urlsplit(value).scheme
        if scheme not in _ACCEPTED_SCHEMES:
            raise ValueError(
                f"DATABASE_URL must look like postgresql://user:password@host:5432/dbname "
                f"(got scheme {scheme!r})"
            )
        return value

    @property
    def max_upload_bytes(self) -> int:
        """Upload limit in bytes."""
        return self.max_upload_mb * 1024 * 1024

    @property
    def geometry_limits(self) -> GeometryLimits:
        """The bounds on request geometries, as the layer code takes them."""
        return GeometryLimits(
            vertices=self.max_request_vertices,
            parts=self.max_request_parts,
            depth=self.max_request_depth,
            repair_vertices=self.max_repair_vertices,
        )

    @property
    def max_json_bytes(self) -> int:
        """Limit of other request bodies in bytes."""
        return self.max_json_mb * 1024 * 1024

    @field_validator("map_basemap")
    @classmethod
    def _check_basemap(cls, value: str) -> str:
        """Accept the two names or an http(s) tile template with {z}, {x} and {y}."""
        value = value.strip()
        if value in ("kartverket", "none"):
            return value
        if value.startswith(("http://", "https://")) and all(
            part in value for part in ("{z}", "{x}", "{y}")
        ):
            return value
        raise ValueError(
            "map_basemap must be 'kartverket', 'none' or a tile URL template such as "
            "https://tiles.example.no/{z}/{x}/{y}.png"
        )

    @property
    def data_path(self) -> Path:
        """The data directory as an absolute path, so child processes agree on it."""
        return self.data_dir.expanduser().resolve()
