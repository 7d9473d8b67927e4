"""Plan analyses as jobs: a row with status and progress that the API can poll."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text

from analyses.land_account import land_account
from analyses.plans import analyse_plan, plan_version
from core.errors import Conflict, GeoServiceError, InvalidInput, NotFound

# A queued job whose request ended this long ago without starting never will.
QUEUED_GRACE = "5 minutes"
LAND_ACCOUNT = "land_account"  # request["analysis"] of a land-account job
INTERRUPTED = "interrupted: the service stopped while it ran; start it again"


def create_job(engine: Engine, layer_id: int, request: dict[str, Any]) -> int:
    """Queue an analysis; the caller runs :func:`run_job` in the background."""
    with engine.begin() as conn:
        plan_version(conn, layer_id)  # refuse missing layers and non-plans before queuing
        return int(
            conn.execute(
                text(
                    "INSERT INTO geoservice.plan_analysis (layer_id, request) "
                    "VALUES (:l, CAST(:r AS jsonb)) RETURNING id"
                ),
                {"l": layer_id, "r": json.dumps(request)},
            ).scalar_one()
        )


def _update(engine: Engine, job_id: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)  # keys are ours, values are bound
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE geoservice.plan_analysis SET {sets} WHERE id = :id"),
            {"id": job_id, **values},
        )


def _fail(engine: Engine, job_id: int, error: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE geoservice.plan_analysis SET status = 'failed', error = :e, "
                "finished_at = now() WHERE id = :id"
            ),
            {"id": job_id, "e": error},
        )


# Advisory-lock namespace of running jobs: the runner's session holds (JOB_LOCK, job id), so a
# running job whose lock is free has lost its process (killed, crashed, machine restarted).
JOB_LOCK = 0x6A6F62  # 'job'


def run_job(engine: Engine, job_id: int) -> None:
    """Run a queued analysis, recording progress, result or a readable error."""
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:k, :id)"), {"k": JOB_LOCK, "id": job_id})
        lock.commit()
        try:
            _run_locked(engine, job_id)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k, :id)"), {"k": JOB_LOCK, "id": job_id})
            lock.commit()


def _run_locked(engine: Engine, job_id: int) -> None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT layer_id, request FROM geoservice.plan_analysis WHERE id = :id"),
            {"id": job_id},
        ).one()
    _update(engine, job_id, status="running")
    step = {"last": 0.0}

    def progress(done: int, total: int) -> None:
        share = done / total if total else 1.0
        if share - step["last"] >= 0.05 or done == total:
            step["last"] = share
            _update(engine, job_id, progress=share)

    try:
        result = _run(engine, row.layer_id, row.request, progress)
    except GeoServiceError as exc:
        _fail(engine, job_id, exc.detail)
        return
    except Exception as exc:  # a job must end with a status, never hang as 'running'
        _fail(engine, job_id, f"internal error: {type(exc).__name__}")
        raise
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE geoservice.plan_analysis SET status = 'done', progress = 1, "
                "result = CAST(:r AS jsonb), finished_at = now() WHERE id = :id"
            ),
            {"id": job_id, "r": json.dumps(result, default=str)},
        )


def _run(engine: Engine, layer_id: int, request: dict[str, Any], progress: Any) -> dict[str, Any]:
    """The analysis a job asked for: the plan analysis, or the land account."""
    common = {
        "preset_name": request.get("preset", "miljodirektoratet-20y"),
        "peat_handling": request.get("peat_handling", "drained"),
        "peat_excavated_share": request.get("peat_excavated_share"),
        "progress": progress,
    }
    if request.get("analysis") == LAND_ACCOUNT:
        return land_account(
            engine,
            layer_id,
            version=request.get("version"),
            compare_layer_id=request.get("compare_layer_id"),
            compare_version=request.get("compare_version"),
            dwellings_per_daa={int(k): float(v) for k, v in request["dwellings_per_daa"].items()}
            if request.get("dwellings_per_daa")
            else None,
            **common,
        )
    return analyse_plan(engine, layer_id, rezone=request.get("rezone") or [], **common)


def get_job(engine: Engine, job_id: int) -> dict[str, Any]:
    """Status, progress and (when done) the result of an analysis.

    A read writes nothing: a job whose runner is gone (its advisory lock is free) reads as
    failed here, and is marked so when a service process next starts.
    """
    with engine.connect() as conn:
        row = conn.execute(
            text(
                """
                WITH job AS (
                    SELECT j.*,
                           (j.status = 'running' AND NOT EXISTS (
                               SELECT 1 FROM pg_locks l
                                WHERE l.locktype = 'advisory' AND l.granted
                                  AND l.classid = :lock AND l.objid = j.id
                                  AND l.objsubid = 2))
                           OR (j.status = 'queued'
                               AND j.created_at < now() - CAST(:grace AS interval))
                           AS interrupted
                      FROM geoservice.plan_analysis j WHERE j.id = :id)
                SELECT id, layer_id,
                       CASE WHEN interrupted THEN 'failed' ELSE status END AS status,
                       progress, created_at, finished_at, request, result,
                       CASE WHEN interrupted THEN :interrupted ELSE error END AS error
                  FROM job
                """
            ),
            {"id": job_id, "lock": JOB_LOCK, "grace": QUEUED_GRACE, "interrupted": INTERRUPTED},
        ).first()
    if row is None:
        raise NotFound(f"There is no plan analysis {job_id}.", code="analysis_not_found")
    data = dict(row._mapping)
    data["created_at"] = row.created_at.isoformat()
    data["finished_at"] = row.finished_at.isoformat() if row.finished_at else None
    return data


def land_account_result(engine: Engine, job_id: int) -> dict[str, Any]:
    """The result of a finished land account (for its workbook, map and report)."""
    job = get_job(engine, job_id)
    if job["request"].get("analysis") != LAND_ACCOUNT:
        raise InvalidInput(
            f"Analysis {job_id} is a plan analysis, not a land account; start one with "
            "POST /api/plans/{layer_id}/land-account.",
            code="not_a_land_account",
        )
    if job["status"] != "done":
        raise Conflict(
            f"Land account {job_id} is {job['status']}"
            + (f" ({job['error']})" if job.get("error") else "")
            + "; try again when it is done.",
            code="not_done",
        )
    return dict(job["result"])


def fail_interrupted(engine: Engine, job_id: int | None = None) -> int:
    """Mark jobs whose runner is gone as failed (all, or just ``job_id``); returns how many.

    A running job's lock is held by its runner's database session, which ends with the
    process, so a free lock means the job will never finish. Safe with several service
    processes on one database: a live runner's job keeps its lock.
    """
    with engine.begin() as conn:
        return conn.execute(
            text(
                """
                UPDATE geoservice.plan_analysis
                   SET status = 'failed', finished_at = now(), error = :interrupted
                 WHERE (status = 'running'
                        OR (status = 'queued'
                            AND created_at < now() - CAST(:grace AS interval)))
                   AND (CAST(:id AS integer) IS NULL OR id = :id)
                   AND pg_try_advisory_xact_lock(:lock, id)
                """
            ),
            {"id": job_id, "lock": JOB_LOCK, "grace": QUEUED_GRACE, "interrupted": INTERRUPTED},
        ).rowcount


def latest_result(engine: Engine, layer_id: int) -> dict[str, Any] | None:
    """The newest finished analysis of the plan's active version, or None."""
    with engine.connect() as conn:
        plan = plan_version(conn, layer_id)
        row = conn.execute(
            text(
                "SELECT id, result FROM geoservice.plan_analysis "
                "WHERE layer_id = :l AND status = 'done' AND NOT request ? 'analysis' "
                "AND (result->'provenance'->'plan_layer'->>'version_id')::int = :v "
                "ORDER BY finished_at DESC, id DESC LIMIT 1"
            ),
            {"l": layer_id, "v": plan["version_id"]},
        ).first()
    return {"analysis_id": row.id, **row.result} if row else None
