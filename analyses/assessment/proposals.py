"""A proposal and its alternatives assessed and stored, with provenance; stored proposals
read back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, text

from analyses.assessment.arithmetic import default_built_share
from analyses.assessment.footprint import (
    footprint_geometries,
    footprint_name,
    prepare_footprint,
)
from analyses.assessment.valuation import assess_footprint
from analyses.factors import (
    active_table,
)
from analyses.presets import (
    DEFAULT_PRESET,
    PeatHandling,
    excavated_share,
    stored_preset,
)
from core import __version__
from core.bibliography import citations
from core.errors import InvalidInput, NotFound
from layers import codelists
from layers.catalog import active_by_kind
from layers.crs import epsg_of, parse_crs


@dataclass
class ProposalRequest:
    """What a planner sends: footprints (the proposal and named alternatives) and choices."""

    footprint: dict[str, Any]
    arealformal: int
    crs: str = "EPSG:4326"
    built_share: float | None = None
    preset: str = DEFAULT_PRESET
    peat_handling: PeatHandling = "drained"
    name: str | None = None
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Share of the built mire excavated and removed; None: all when peat_handling says so.
    peat_excavated_share: float | None = None


def assess(
    engine: Engine, request: ProposalRequest, *, storage_srid: int, user: str | None = None
) -> dict[str, Any]:
    """Assess the proposal and its alternatives, store the result, return it with its id."""
    preset = stored_preset(engine, request.preset)
    if request.peat_handling not in ("excavated", "drained", "filled"):
        raise InvalidInput(
            "peat_handling must be excavated, drained or filled.", code="bad_peat_handling"
        )
    try:
        excavated = excavated_share(request.peat_handling, request.peat_excavated_share)
    except ValueError as exc:
        raise InvalidInput(f"{exc}.", code="bad_peat_excavated_share") from exc
    if request.arealformal not in codelists.load("arealformal").rows:
        raise InvalidInput(
            f"arealformål {request.arealformal} is not in the code list "
            "(e.g. 1110 boligbebyggelse, 1300 næring, 2010 veg).",
            code="unknown_arealformal",
        )
    if request.built_share is None:
        built, built_source = default_built_share(request.arealformal)
    elif 0 <= request.built_share <= 1:
        built, built_source = request.built_share, "given in the request"
    else:
        raise InvalidInput("built_share must be between 0 and 1.", code="bad_built_share")
    if request.name is None:  # the file's own name for its footprint, when it gives one
        request = replace(request, name=footprint_name(request.footprint))
    srid_in = epsg_of(parse_crs(request.crs), request.crs)
    footprints = {"proposal": footprint_geometries(request.footprint, "proposal")}
    for alt_name, alt in request.alternatives.items():
        footprints[alt_name] = footprint_geometries(alt, f"alternative {alt_name!r}")
    table = active_table(engine)
    with engine.begin() as conn:
        results = [
            assess_footprint(
                conn,
                label,
                geoms,
                srid_in=srid_in,
                srid=storage_srid,
                built=built,
                preset=preset,
                excavated=excavated,
                table=table,
            )
            for label, geoms in footprints.items()
        ]
        active = active_by_kind(conn)
        ranking = sorted(results, key=lambda r: r["emission_t_co2e"].get("central", 0.0))
        best = ranking[0]
        comparison = [
            {
                "name": r["name"],
                "emission_t_co2e": r["emission_t_co2e"].get("central", 0.0),
                "more_than_least_t_co2e": round(
                    r["emission_t_co2e"].get("central", 0.0)
                    - best["emission_t_co2e"].get("central", 0.0),
                    2,
                ),
            }
            for r in ranking
        ]
        result = {
            "name": request.name,
            "arealformal": request.arealformal,
            "arealformal_name": codelists.load("arealformal").label(request.arealformal),
            "built_share": built,
            "built_share_source": built_source,
            "peat_handling": request.peat_handling,
            "peat_excavated_share": excavated,
            "footprints": results,
            "least_carbon_loss": best["name"],
            "comparison": comparison,
            "provenance": {
                # Every source behind the numbers, in full (from the bibliography keys).
                "sources": citations(
                    preset.source,
                    built_source,
                    *((c.get("factor") or {}).get("source") for r in results for c in r["classes"]),
                ),
                "factor_table": table.describe(),
                "preset": preset.describe(),
                "land_cover_layers": [r["land_cover_layer"] for r in results],
                "carbon_rasters": [r["carbon_raster"] for r in results if r["carbon_raster"]],
                "other_layers": {
                    kind: [
                        {
                            "layer_id": v.layer_id,
                            "name": v.name,
                            "version_id": v.version_id,
                            "version": v.version,
                        }
                        for v in active.get(kind, [])
                    ]
                    for kind in (
                        "nature_types",
                        "protected_areas",
                        "peat",
                        "peat_depth",
                        "carbon_density",
                    )
                },
                "software": f"geoservice {__version__}",
                "notes": [
                    "Mire: a peat-depth raster, else peat depth probes (IDW) give the mean "
                    "depth × NINA carbon density; without them the depth classes of peat "
                    "layers (grunn/djup), else the unknown-depth factor (lucode 6000).",
                ],
            },
        }
        request_json = {
            "name": request.name,
            "crs": request.crs,
            "arealformal": request.arealformal,
            "built_share": request.built_share,
            "preset": request.preset,
            "peat_handling": request.peat_handling,
            "peat_excavated_share": request.peat_excavated_share,
            "footprint": request.footprint,
            "alternatives": request.alternatives,
        }
        proposal_id = conn.execute(
            text(
                "INSERT INTO geoservice.proposal (name, request, result, created_by) "
                "VALUES (:n, CAST(:req AS jsonb), CAST(:res AS jsonb), :u) RETURNING id"
            ),
            {
                "u": user,
                "n": request.name,
                "req": json.dumps(request_json),
                "res": json.dumps(result, default=str),
            },
        ).scalar_one()
    return {"id": int(proposal_id), **result}


@dataclass(frozen=True)
class StoredProposal:
    """A stored assessment: what was asked, what came out, and the footprints again."""

    id: int
    created_at: Any
    request: dict[str, Any]
    result: dict[str, Any]

    def footprints(self, conn: Connection, srid: int) -> list[tuple[str, bytes]]:
        """(name, WKB in ``srid``) of the proposal and its alternatives, as assessed."""
        srid_in = epsg_of(parse_crs(self.request["crs"]), self.request["crs"])
        shapes = [
            ("proposal", self.request["footprint"]),
            *self.request.get("alternatives", {}).items(),
        ]
        return [
            (
                name,
                prepare_footprint(conn, footprint_geometries(g, name), srid_in, srid, name)["wkb"],
            )
            for name, g in shapes
        ]


def load_proposal(conn: Connection, proposal_id: int) -> StoredProposal:
    """The stored assessment, or NotFound."""
    row = conn.execute(
        text(
            "SELECT id, created_at, request, result, deleted_at FROM geoservice.proposal "
            "WHERE id = :id"
        ),
        {"id": proposal_id},
    ).first()
    if row is None:
        raise NotFound(f"There is no proposal {proposal_id}.", code="proposal_not_found")
    if row.deleted_at is not None:
        raise NotFound(
            f"Proposal {proposal_id} was deleted; POST /api/proposals/{proposal_id}/restore "
            "brings it back.",
            code="proposal_deleted",
        )
    return StoredProposal(row.id, row.created_at, row.request, row.result)


def get_proposal(engine: Engine, proposal_id: int) -> dict[str, Any]:
    """A stored assessment as the API returns it."""
    with engine.connect() as conn:
        stored = load_proposal(conn, proposal_id)
    return {"id": stored.id, "created_at": stored.created_at.isoformat(), **stored.result}
