"""Response models of the main endpoints, so the OpenAPI document says what comes back.

Each names the fields a client relies on, typed; the richer parts (per-class tables,
provenance, code-list extras) stay open (``extra="allow"``) and pass through unchanged, so a
field added to a result does not break the contract.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Open(BaseModel):
    """A model whose further fields pass through."""

    model_config = ConfigDict(extra="allow")


class Link(BaseModel):
    """A link of a listing (self, next, prev)."""

    rel: str
    href: str


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int = Field(description="Items in the whole listing")
    limit: int
    offset: int
    links: list[Link]


# --- layers -------------------------------------------------------------------------------
class LayerVersion(Open):
    """A published version of a layer with its provenance."""

    version: int
    feature_count: int | None = None
    created_at: str
    storage_crs: str


class Layer(Open):
    """A layer and its active version."""

    id: int
    name: str
    kind: str
    created_at: str
    active_version: LayerVersion | None


class LayerVersions(BaseModel):
    """Every version of a layer; ``active`` marks the one in use."""

    layer_id: int
    versions: list[LayerVersion]


# --- proposals and plans --------------------------------------------------------------------
class FootprintResult(Open):
    """One footprint (the proposal or an alternative) valued."""

    name: str
    area_m2: float
    classes: list[dict[str, Any]]
    stock_t_c: dict[str, float]
    flags: dict[str, Any]


class Proposal(Open):
    """A stored assessment with its footprints, comparison and provenance."""

    id: int
    name: str | None
    arealformal: int
    built_share: float
    peat_handling: str
    footprints: list[FootprintResult]
    least_carbon_loss: str
    provenance: dict[str, Any]


class ProposalSummary(BaseModel):
    """A stored proposal in the list: enough to find it again and see what it costs."""

    id: int
    name: str | None
    created_at: str
    created_by: str | None
    deleted: bool
    arealformal: int | None
    arealformal_name: str | None
    emission_t_co2e: float | None = Field(description="The proposal footprint's, central")
    area_m2: float | None
    least_carbon_loss: str | None
    href: str


class ProposalRename(BaseModel):
    """A new name for a proposal."""

    name: str = Field(min_length=1, max_length=200)


class PlanJobQueued(BaseModel):
    """A plan analysis accepted: poll ``href``."""

    id: int
    status: Literal["queued"]
    href: str


class PlanJob(BaseModel):
    """A plan analysis: queued, running (with progress), done (with the result) or failed."""

    id: int
    layer_id: int
    status: Literal["queued", "running", "done", "failed"]
    progress: float = Field(ge=0, le=1)
    created_at: str
    finished_at: str | None
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None


# --- restoration ------------------------------------------------------------------------------
class Project(Open):
    """The current (or recorded) state of a restoration project."""

    id: int
    version: int
    recorded_at: str
    recorded_by: str | None
    area_ha: float
    name: str
    ecosystem_type: str
    status_history: list[dict[str, Any]]


class ProjectVersion(Project):
    """One version of a project in its history, with what changed."""

    change: Literal["create", "update", "delete", "restore"]


class ProjectHistory(BaseModel):
    """Every version of a project."""

    id: int
    versions: list[ProjectVersion]


class ProjectImport(BaseModel):
    """What a file import registered."""

    imported: int
    ids: list[int]


class Progress(Open):
    """Progress of a region or a drawn polygon towards the targets on a day."""

    region: str
    region_kind: str
    ecosystem: str | None
    as_of: str
    baseline_degraded_ha: float
    under_restoration_ha: float
    share: float
    restoration_outside_baseline_ha: float
    targets: list[dict[str, Any]]
    provenance: dict[str, Any]


# --- national runs ----------------------------------------------------------------------------
class NationalRunQueued(BaseModel):
    """A national run accepted: poll ``href`` for progress and results."""

    id: int
    status: Literal["queued"]
    href: str


class NationalRun(BaseModel):
    """A national run: its state, progress over Dask tasks, provenance and results per
    region (paged)."""

    id: int
    kind: Literal["arealregnskap", "restoration"]
    status: Literal["queued", "running", "done", "failed"]
    request: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    created_by: str | None
    tasks_total: int
    tasks_done: int
    progress: float = Field(ge=0, le=1)
    engine: dict[str, Any] | None
    provenance: dict[str, Any] | None
    task_times: list[dict[str, Any]] | None
    error: str | None
    regions_total: int
    results: list[dict[str, Any]]
