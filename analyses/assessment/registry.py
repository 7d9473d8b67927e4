"""Stored proposals as a planner keeps them: listed and searched, renamed, deleted and restored.

A delete only marks the proposal; its assessment stays, and restoring it brings it back as
it was.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from core.errors import Conflict, InvalidInput, NotFound

_SUMMARY = """
    SELECT id, name, created_at, created_by, deleted_at,
           (result->>'arealformal')::int AS arealformal,
           result->>'arealformal_name' AS arealformal_name,
           (result->'footprints'->0->'emission_t_co2e'->>'central')::float AS emission,
           (result->'footprints'->0->>'area_m2')::float AS area_m2,
           result->>'least_carbon_loss' AS least_carbon_loss
      FROM geoservice.proposal
     WHERE (CAST(:deleted AS boolean) OR deleted_at IS NULL)
       AND (CAST(:q AS text) IS NULL
            OR coalesce(name, '') ILIKE '%' || CAST(:q AS text) || '%'
            OR CAST(id AS text) = CAST(:q AS text))
"""


def _summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "deleted": row.deleted_at is not None,
        "arealformal": row.arealformal,
        "arealformal_name": row.arealformal_name,
        "emission_t_co2e": row.emission,
        "area_m2": row.area_m2,
        "least_carbon_loss": row.least_carbon_loss,
        "href": f"/api/proposals/{row.id}",
    }


def list_proposals(
    engine: Engine, *, q: str | None, limit: int, offset: int, deleted: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """Proposals, newest first; ``q`` searches the name (or matches the id)."""
    params = {"q": q.strip() if q and q.strip() else None, "deleted": deleted}
    with engine.connect() as conn:
        total = conn.execute(text(f"SELECT count(*) FROM ({_SUMMARY}) s"), params).scalar_one()
        rows = conn.execute(
            text(f"{_SUMMARY} ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset"),
            {**params, "limit": limit, "offset": offset},
        ).all()
    return [_summary(r) for r in rows], int(total)


def _one(engine: Engine, proposal_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text(f"SELECT * FROM ({_SUMMARY}) s WHERE id = :id"),
            {"q": None, "deleted": True, "id": proposal_id},
        ).first()
    if row is None:
        raise NotFound(f"There is no proposal {proposal_id}.", code="proposal_not_found")
    return _summary(row)


def rename_proposal(engine: Engine, proposal_id: int, name: str) -> dict[str, Any]:
    """Give a proposal another name (the stored result says it too)."""
    name = name.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise InvalidInput(
            "A proposal's name is 1–200 printable characters.", code="bad_proposal_name"
        )
    with engine.begin() as conn:
        found = conn.execute(
            text(
                "UPDATE geoservice.proposal SET name = :n, "
                "result = jsonb_set(result, '{name}', to_jsonb(CAST(:n AS text))) "
                "WHERE id = :id AND deleted_at IS NULL RETURNING id"
            ),
            {"n": name, "id": proposal_id},
        ).scalar()
    if found is None:
        _one(engine, proposal_id)  # not found at all: 404
        raise Conflict(
            f"Proposal {proposal_id} is deleted; restore it before renaming it.",
            code="proposal_deleted",
        )
    return _one(engine, proposal_id)


def delete_proposal(engine: Engine, proposal_id: int) -> None:
    """Mark a proposal deleted (it leaves the list; :func:`restore_proposal` undoes it)."""
    with engine.begin() as conn:
        found = conn.execute(
            text(
                "UPDATE geoservice.proposal SET deleted_at = coalesce(deleted_at, now()) "
                "WHERE id = :id RETURNING id"
            ),
            {"id": proposal_id},
        ).scalar()
    if found is None:
        raise NotFound(f"There is no proposal {proposal_id}.", code="proposal_not_found")


def restore_proposal(engine: Engine, proposal_id: int) -> dict[str, Any]:
    """Bring a deleted proposal back, as it was."""
    with engine.begin() as conn:
        found = conn.execute(
            text(
                "UPDATE geoservice.proposal SET deleted_at = NULL "
                "WHERE id = :id AND deleted_at IS NOT NULL RETURNING id"
            ),
            {"id": proposal_id},
        ).scalar()
    if found is None:
        _one(engine, proposal_id)
        raise Conflict(
            f"Proposal {proposal_id} is not deleted; there is nothing to restore.",
            code="proposal_not_deleted",
        )
    return _one(engine, proposal_id)
