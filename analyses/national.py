"""National runs: the carbon at stake in every kommune's arealreserve, and restoration
progress for every kommune and fylke, computed on Dask (``dask.distributed``).

The single-machine code does the work: a task values its kommune's zones with
:func:`analyses.land_account.reserve_of_zones` (the proposal's valuation) or measures its
region with :func:`analyses.restoration.progress`, reading only its own rows from PostGIS
through the spatial index. Dask places the tasks, retries them when a worker dies and reports
progress; nothing here schedules work itself.

Partitioning: a zone belongs to the kommune its point on surface lies in (active boundaries
layer), so no zone counts twice. A kommune larger than ``split_km2`` is cut by a national
grid of ``cell_m`` squares, the zone going to the cell its point on surface lies in; the
cells' sums are added back per kommune. Each task finds its own zones (an indexed bbox query
on the kommune and cell), so nothing but the list of kommuner is prepared centrally.

The results of a run are written in the transaction that marks it done: a run that fails
(a task failing after its retries, workers that keep dying) leaves its row marked failed with
the reason and no results.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from analyses import land_account as la
from analyses.factors import FactorTable, active_table
from analyses.presets import DEFAULT_PRESET, excavated_share, stored_preset
from analyses.restoration import progress_from_areas, region_areas
from analyses.restoration.progress import AREAS
from core import __version__
from core.bibliography import citations
from core.database import sqlalchemy_url
from core.errors import InvalidInput, NotFound
from layers.catalog import active_versions

KINDS = ("arealregnskap", "restoration")
# A kommune larger than this is cut into cells of the national grid, one task each; the
# others go KOMMUNER_PER_TASK to a task (neighbours by number). Every fylke is cut into
# cells of FYLKE_CELL_M for restoration (a fylke is as much work as its kommuner together).
SPLIT_KM2 = 5_000.0
CELL_M = 50_000.0
FYLKE_CELL_M = 100_000.0
KOMMUNER_PER_TASK = 4
TASK_RETRIES = 2
# Sums a kommune's grid cells add up to; the rest of a reserve entry stays per zone.
SUMMED = (
    "reserve_daa",
    "emission_t_co2e",
    "emission_low_t_co2e",
    "emission_high_t_co2e",
    "stock_t_c",
    "forgone_sequestration_t_co2",
    "carbon_rich_daa",
    "dwellings",
)
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Task:
    """One unit of work: some kommuner (or fylker), or one grid cell of a large one."""

    key: str
    region_kind: str  # "kommune" or "fylke"
    regions: tuple[tuple[str, str | None], ...]  # (code, name)
    cell: tuple[int, int, float] | None = None  # (column, row, size in metres)

    @property
    def codes(self) -> list[str]:
        """The regions' numbers."""
        return [code for code, _ in self.regions]


@dataclass
class Inputs:
    """What a run reads, fixed before the first task starts (and checked by every task)."""

    kind: str
    database_url: str
    plan_versions: list[int] = field(default_factory=list)
    boundary_versions: list[int] = field(default_factory=list)
    factor_table_id: int | None = None
    preset: str = DEFAULT_PRESET
    peat_handling: str = "drained"
    peat_excavated_share: float | None = None
    as_of: str | None = None


# -- on the workers ---------------------------------------------------------------------------

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _worker_engine(url: str) -> Engine:
    """One small pool per worker process and database (tasks on a worker share it).

    A worker started with ``GEOSERVICE_WORKER_DATABASE_URL`` reads from that database
    instead (a read replica near it); the run's write-back still goes to the primary."""
    url = sqlalchemy_url(os.environ.get("GEOSERVICE_WORKER_DATABASE_URL") or url)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = create_engine(
                url,
                pool_size=2,
                max_overflow=2,
                pool_pre_ping=True,
                connect_args={"options": "-c jit=off"},
            )
            _ENGINES[url] = engine
        return engine


def _where() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


# A task's zones: those of the run's plan versions whose point on surface lies in its kommune
# (and, for a large kommune, in its grid cell; a cell is half-open, so a point on a grid line
# goes to exactly one). The kommune's polygon repeats on every row, so PostGIS prepares it once.
_ZONES_OF_TASK_SQL = """
WITH k AS (SELECT attrs->>'kommunenummer' AS code, geom FROM geoservice.feature
            WHERE version_id = ANY(:boundaries) AND attrs->>'kommunenummer' = ANY(:kommuner)),
     z AS (SELECT k.code, k.geom AS kg, f.version_id, f.fid, ST_PointOnSurface(f.geom) AS p
             FROM geoservice.feature f JOIN k ON f.geom && k.geom
            WHERE f.version_id = ANY(:plans) AND f.attrs ? 'arealformal'
              AND (CAST(:cx AS integer) IS NULL OR f.geom && ST_MakeEnvelope(
                     :cx * CAST(:size AS float8), :cy * CAST(:size AS float8),
                     (:cx + 1) * CAST(:size AS float8), (:cy + 1) * CAST(:size AS float8),
                     ST_SRID(k.geom))))
SELECT DISTINCT z.code, z.version_id, z.fid FROM z
 WHERE ST_Intersects(z.kg, z.p)
   AND (CAST(:cx AS integer) IS NULL
        OR (floor(ST_X(z.p) / :size) = :cx AND floor(ST_Y(z.p) / :size) = :cy))
 ORDER BY 2, 3
"""


def _check_versions(conn: Connection, versions: list[int]) -> None:
    """A worker reading a replica that has not caught up must fail, not count nothing
    (a version is published in one transaction, so one that is there is there whole)."""
    present = set(
        conn.execute(
            text("SELECT id FROM geoservice.layer_version WHERE id = ANY(:v)"), {"v": versions}
        ).scalars()
    )
    missing = sorted(set(versions) - present)
    if missing:
        raise RuntimeError(
            f"the worker's database lacks layer version(s) {', '.join(map(str, missing))} "
            "(a replica behind the primary?); start the run again when it has caught up"
        )


def reserve_task(task: Task, inputs: Inputs) -> dict[str, Any]:
    """Find some kommuner's (or a grid cell's) zones and value them as the land account
    does; the sums per kommune."""
    started, cpu = time.perf_counter(), time.process_time()
    engine = _worker_engine(inputs.database_url)
    table = active_table(engine)
    if table.id != inputs.factor_table_id:
        raise RuntimeError(
            f"the active factor table changed during the run ({inputs.factor_table_id} -> "
            f"{table.id}); start the run again"
        )
    preset = stored_preset(engine, inputs.preset)
    excavated = excavated_share(inputs.peat_handling, inputs.peat_excavated_share)
    entries: list[dict[str, Any]] = []
    land_cover: dict[int, dict[str, Any]] = {}
    with engine.connect() as conn:
        _check_versions(conn, [*inputs.plan_versions, *inputs.boundary_versions])
        extent = la.nature_extent(conn)
        ids = conn.execute(
            text(_ZONES_OF_TASK_SQL),
            {
                "plans": inputs.plan_versions,
                "boundaries": inputs.boundary_versions,
                "kommuner": task.codes,
                "cx": task.cell[0] if task.cell else None,
                "cy": task.cell[1] if task.cell else None,
                "size": task.cell[2] if task.cell else None,
            },
        ).all()
        kommune_of = {(int(r.version_id), int(r.fid)): str(r.code) for r in ids}
        per_version: dict[int, list[int]] = {}
        for r in ids:
            per_version.setdefault(int(r.version_id), []).append(int(r.fid))
        plans = [
            (v, la.zones_of(conn, v, fids), la.srid_of(conn, v))
            for v, fids in sorted(per_version.items())
        ]
    for version_id, zones, srid in plans:
        reserve, read = la.reserve_of_zones(
            engine,
            zones,
            srid=srid,
            table=table,
            preset=preset,
            excavated=excavated,
            extent=extent,
        )
        land_cover.update(read)
        entries += [{**e, "plan_version_id": version_id} for e in reserve["zones"]]
    per_kommune: dict[str, list[dict[str, Any]]] = {code: [] for code in task.codes}
    for e in entries:
        per_kommune[kommune_of[e["plan_version_id"], e["fid"]]].append(e)
    counted = dict.fromkeys(task.codes, 0)
    for code in kommune_of.values():
        counted[code] += 1
    return {
        "key": task.key,
        "zones": len(ids),
        "parts": {
            code: {"zones": counted[code], **reserve_sums(found)}
            for code, found in per_kommune.items()
        },
        "land_cover_versions": sorted(land_cover),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "worker": _where(),
    }


def restoration_task(task: Task, inputs: Inputs) -> dict[str, Any]:
    """The hectares restoration progress is made of, for some kommuner (or one grid cell of
    a fylke) in one pass; they add up to each region's as ``/api/restoration/progress``
    measures it."""
    started, cpu = time.perf_counter(), time.process_time()
    engine = _worker_engine(inputs.database_url)
    with engine.connect() as conn:
        _check_versions(conn, inputs.boundary_versions)
    as_of = date.fromisoformat(str(inputs.as_of))
    found = region_areas(engine, task.codes, task.region_kind, as_of=as_of, cell=task.cell)
    return {
        "key": task.key,
        "zones": len(task.codes),
        "parts": found,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "worker": _where(),
    }


def _central(value: Any) -> float:
    return float(value.get("central", 0.0)) if isinstance(value, dict) else float(value or 0.0)


def reserve_sums(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of reserve entries, summed in one order (plan version, fid) whoever sums them,
    so the national run and the single-machine account agree to the last bit."""
    ordered = sorted(entries, key=lambda e: (e.get("plan_version_id", 0), e["fid"]))
    sums: dict[str, Any] = {"reserve_zones": len(ordered)}
    for name in SUMMED:
        sums[name] = 0.0
    per_code: dict[str, dict[str, float]] = {}
    land: dict[str, float] = {}
    for e in ordered:
        emission = e["emission_t_co2e"]
        sums["reserve_daa"] += e["reserve_daa"]
        sums["emission_t_co2e"] += _central(emission)
        sums["emission_low_t_co2e"] += float(emission.get("low", 0.0))
        sums["emission_high_t_co2e"] += float(emission.get("high", 0.0))
        sums["stock_t_c"] += _central(e["stock_t_c"])
        sums["forgone_sequestration_t_co2"] += float(e["forgone_sequestration_t_co2"])
        sums["carbon_rich_daa"] += float(e["carbon_rich_daa"])
        sums["dwellings"] += float(e.get("dwellings", 0.0))
        code = per_code.setdefault(
            str(e["arealformal"]), {"zones": 0, "reserve_daa": 0.0, "emission_t_co2e": 0.0}
        )
        code["zones"] += 1
        code["reserve_daa"] += e["reserve_daa"]
        code["emission_t_co2e"] += _central(emission)
        for quality, daa in e["land_daa"].items():
            land[quality] = land.get(quality, 0.0) + daa
    sums["per_arealformal"] = dict(sorted(per_code.items()))
    sums["land_daa"] = dict(sorted(land.items()))
    return sums


def add_sums(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two grid cells' sums as one kommune's (cells hold disjoint zones)."""
    out = {k: a[k] + b[k] for k in ("zones", "reserve_zones", *SUMMED)}
    codes = dict(a["per_arealformal"])
    for code, row in b["per_arealformal"].items():
        old = codes.get(code, {"zones": 0, "reserve_daa": 0.0, "emission_t_co2e": 0.0})
        codes[code] = {k: old[k] + row[k] for k in old}
    land = dict(a["land_daa"])
    for quality, daa in b["land_daa"].items():
        land[quality] = land.get(quality, 0.0) + daa
    out["per_arealformal"] = dict(sorted(codes.items()))
    out["land_daa"] = dict(sorted(land.items()))
    return out


# -- on the machine that starts the run -------------------------------------------------------


def _boundaries(conn: Connection) -> list[int]:
    found = [v.version_id for v in active_versions(conn, "boundaries")]
    if not found:
        raise InvalidInput(
            "No boundaries layer is active; upload the kommuner (and fylker) first "
            "(kind=boundaries, e.g. data/kommuner-fylker-2024/Kommuner-M.geojson).",
            code="no_boundaries",
        )
    return found


_REGIONS_SQL = """
WITH r AS (
    SELECT attrs->>CAST(:key AS text) AS code, min(attrs->>'navn') AS name,
           ST_Collect(geom) AS geom
      FROM geoservice.feature
     WHERE version_id = ANY(:b) AND attrs ? CAST(:key AS text) GROUP BY 1)
SELECT code, name, NULL::int AS cx, NULL::int AS cy FROM r WHERE ST_Area(geom) <= :split * 1e6
UNION ALL
SELECT code, name, cx, cy FROM r,
       generate_series(floor(ST_XMin(geom) / :size)::int, floor(ST_XMax(geom) / :size)::int) cx,
       generate_series(floor(ST_YMin(geom) / :size)::int, floor(ST_YMax(geom) / :size)::int) cy
 WHERE ST_Area(geom) > :split * 1e6
   AND ST_Intersects(geom, ST_MakeEnvelope(cx * :size, cy * :size, (cx + 1) * :size,
                                           (cy + 1) * :size, ST_SRID(geom)))
 ORDER BY 1, 3, 4
"""


def _tasks(
    conn: Connection, kind: str, per_task: int, split_km2: float, cell_m: float
) -> list[Task]:
    """Regions of ``kind`` in the active boundaries: those over ``split_km2`` one task per
    grid cell of ``cell_m`` that touches them, the others ``per_task`` to a task."""
    key = "kommunenummer" if kind == "kommune" else "fylkesnummer"
    rows = conn.execute(
        text(_REGIONS_SQL),
        {"b": _boundaries(conn), "key": key, "split": split_km2, "size": cell_m},
    ).all()
    whole = [(str(r.code), r.name) for r in rows if r.cx is None]
    tasks = []
    for i in range(0, len(whole), per_task):
        batch = tuple(whole[i : i + per_task])
        name = batch[0][0] if len(batch) == 1 else f"{batch[0][0]}-{batch[-1][0]}"
        tasks.append(Task(name, kind, batch))
    for r in rows:
        if r.cx is not None:
            cell = (int(r.cx), int(r.cy), cell_m)
            tasks.append(Task(f"{r.code}@{r.cx},{r.cy}", kind, ((str(r.code), r.name),), cell))
    return tasks


def reserve_tasks(
    conn: Connection, split_km2: float = SPLIT_KM2, cell_m: float = CELL_M
) -> list[Task]:
    """Kommuner ``KOMMUNER_PER_TASK`` to a task; one over ``split_km2`` one task per grid
    cell of ``cell_m`` that touches it."""
    return _tasks(conn, "kommune", KOMMUNER_PER_TASK, split_km2, cell_m)


def _zones_total(conn: Connection, plan_versions: list[int]) -> int:
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM geoservice.feature WHERE version_id = ANY(:plans) "
                "AND attrs ? 'arealformal'"
            ),
            {"plans": plan_versions},
        ).scalar_one()
    )


def restoration_tasks(
    conn: Connection, split_km2: float = SPLIT_KM2, cell_m: float = CELL_M
) -> list[Task]:
    """Kommuner as for the reserve, and every fylke cut into cells of ``FYLKE_CELL_M``."""
    return [
        *_tasks(conn, "kommune", KOMMUNER_PER_TASK, split_km2, cell_m),
        *_tasks(conn, "fylke", 1, 0.0, FYLKE_CELL_M),
    ]


def plan_versions(conn: Connection, layer_ids: list[int] | None) -> list[int]:
    """Active versions of the named plan layers, or of every land-use plan layer."""
    plans = active_versions(conn, "land_use_plan")
    if layer_ids:
        known = {p.layer_id: p.version_id for p in plans}
        missing = [i for i in layer_ids if i not in known]
        if missing:
            raise InvalidInput(
                f"Layer(s) {', '.join(map(str, missing))} are not land-use plans with an active "
                "version; list them with GET /api/layers?kind=land_use_plan.",
                code="not_a_plan",
            )
        return [known[i] for i in layer_ids]
    if not plans:
        raise InvalidInput(
            "No land-use plan layer is active; upload the kommuneplaner first.", code="no_plans"
        )
    return [p.version_id for p in plans]


def create_run(
    engine: Engine, kind: str, request: dict[str, Any], created_by: str | None = None
) -> int:
    """A queued run; the request is checked here, before anything is queued."""
    if kind not in KINDS:
        raise InvalidInput(f"kind is one of {', '.join(KINDS)}.", code="bad_kind")
    with engine.begin() as conn:
        _boundaries(conn)
        if kind == "arealregnskap":
            plan_versions(conn, request.get("plan_layers"))
            stored_preset(engine, request.get("preset", DEFAULT_PRESET))
            try:
                excavated_share(
                    request.get("peat_handling", "drained"), request.get("peat_excavated_share")
                )
            except ValueError as exc:
                raise InvalidInput(f"{exc}.", code="bad_peat_excavated_share") from exc
        return int(
            conn.execute(
                text(
                    "INSERT INTO geoservice.national_run (kind, request, created_by) "
                    "VALUES (:k, CAST(:r AS jsonb), :u) RETURNING id"
                ),
                {"k": kind, "r": _json(request), "u": created_by},
            ).scalar_one()
        )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class SchedulerUnreachable(RuntimeError):
    """The Dask scheduler named in the settings did not answer."""


@contextmanager
def dask_client(
    scheduler: str | None = None, workers: int = 2, timeout_s: float = 30.0
) -> Iterator[Any]:
    """A client of the cluster at ``scheduler`` or, without one, of a local cluster of
    ``workers`` processes with one thread each (PostGIS does the heavy part; one thread per
    process keeps the GIL out of the way)."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(unreachable(scheduler, exc)) from exc
        try:
            yield client
        finally:
            client.close()
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _engine_info(client: Any) -> dict[str, Any]:
    from importlib.metadata import version

    info = client.scheduler_info()
    workers = info.get("workers", {})
    return {
        "engine": "dask.distributed",
        "dask": version("dask"),
        "distributed": version("distributed"),
        "scheduler": info.get("address"),
        "workers": len(workers),
        "threads": sum(int(w.get("nthreads", 0)) for w in workers.values()),
    }


def _start(engine: Engine, run_id: int, total: int, info: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE geoservice.national_run SET status = 'running', started_at = now(), "
                "tasks_total = :n, engine = CAST(:e AS jsonb) WHERE id = :id"
            ),
            {"n": total, "e": _json(info), "id": run_id},
        )


def _count_done(engine: Engine, run_id: int, done: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE geoservice.national_run SET tasks_done = :n WHERE id = :id"),
            {"n": done, "id": run_id},
        )


def fail_run(engine: Engine, run_id: int, error: str) -> None:
    """Mark a run failed with the reason (it has written no results)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE geoservice.national_run SET status = 'failed', error = :e, "
                "finished_at = now() WHERE id = :id"
            ),
            {"e": error, "id": run_id},
        )


def execute_run(
    engine: Engine,
    run_id: int,
    client: Any,
    *,
    split_km2: float = SPLIT_KM2,
    cell_m: float = CELL_M,
    on_submit: Callable[[list[Any]], None] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run a queued national run on ``client``'s cluster and write its results.

    ``on_submit`` is given the futures (the CLI hands them to Dask's progress bar);
    ``progress`` is told (done, total) as tasks finish. Kommuner larger than ``split_km2``
    are cut into grid cells of ``cell_m``.
    """
    from distributed import as_completed

    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT kind, request, status FROM geoservice.national_run WHERE id = :id"),
            {"id": run_id},
        ).first()
    if row is None:
        raise NotFound(f"No national run {run_id}.")
    request = dict(row.request)
    started = time.perf_counter()
    futures: list[Any] = []
    try:
        inputs, tasks = _prepare(engine, row.kind, request, split_km2, cell_m)
        phases = {"prepare_s": time.perf_counter() - started}
        _start(engine, run_id, len(tasks), _engine_info(client))
        fn = reserve_task if row.kind == "arealregnskap" else restoration_task
        futures = client.map(
            fn,
            tasks,
            inputs=inputs,
            key=[f"national-{run_id}-{t.key}" for t in tasks],
            retries=TASK_RETRIES,
            pure=False,
        )
        if on_submit:
            on_submit(futures)
        done: list[dict[str, Any]] = []
        last = 0.0
        for future in as_completed(futures):
            done.append(future.result())
            now = time.perf_counter()
            if now - last > 0.5 or len(done) == len(tasks):
                _count_done(engine, run_id, len(done))
                last = now
            if progress:
                progress(len(done), len(tasks))
        phases["compute_s"] = time.perf_counter() - started - phases["prepare_s"]
        results = _combine(row.kind, tasks, done, inputs.as_of)
        provenance = _provenance(engine, row.kind, inputs, done, split_km2)
        _write(engine, run_id, results, provenance, done, started, phases)
    except BaseException as exc:
        for future in futures:
            future.cancel()
        fail_run(engine, run_id, _reason(exc))
        raise
    return run_result(engine, run_id)


def unreachable(scheduler: str, exc: BaseException) -> str:
    """What to tell a user whose Dask scheduler did not answer."""
    return (
        f"The Dask scheduler at {scheduler} did not answer ({type(exc).__name__}: {exc}); "
        "nothing was run. Start it with `dask scheduler` (and workers with `dask worker "
        f"{scheduler}`), or unset GEOSERVICE_DASK_SCHEDULER to run on a local cluster."
    )


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return (
            "Workers kept dying while running a task (out of memory?); nothing was written. "
            f"Give the workers more memory or fewer threads and start the run again ({exc})."
        )
    return f"{name}: {exc}; nothing was written."


def _prepare(
    engine: Engine, kind: str, request: dict[str, Any], split_km2: float, cell_m: float
) -> tuple[Inputs, list[Task]]:
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        boundaries = _boundaries(conn)
        if kind == "restoration":
            as_of = request.get("as_of") or date.today().isoformat()
            inputs = Inputs(kind, url, boundary_versions=boundaries, as_of=as_of)
            return inputs, restoration_tasks(conn, split_km2, cell_m)
        versions = plan_versions(conn, request.get("plan_layers"))
        tasks = reserve_tasks(conn, split_km2, cell_m)
    table: FactorTable = active_table(engine)
    inputs = Inputs(
        kind,
        url,
        plan_versions=versions,
        boundary_versions=boundaries,
        factor_table_id=table.id,
        preset=request.get("preset", DEFAULT_PRESET),
        peat_handling=request.get("peat_handling", "drained"),
        peat_excavated_share=request.get("peat_excavated_share"),
    )
    return inputs, tasks


def _combine(
    kind: str, tasks: list[Task], done: list[dict[str, Any]], as_of: str | None
) -> list[dict[str, Any]]:
    """One row per region, its parts (grid cells) added up in task order whatever order they
    finished in; restoration's targets worked out on the sums."""
    by_key = {d["key"]: d for d in done}
    names: dict[str, str | None] = {}
    kinds: dict[str, str] = {}
    sums: dict[str, dict[str, Any]] = {}
    for t in tasks:
        for code, name in t.regions:
            names[code], kinds[code] = name, t.region_kind
            part = by_key[t.key]["parts"][code]
            if code not in sums:
                sums[code] = part
            elif kind == "restoration":
                sums[code] = {**part, **{k: sums[code][k] + part[k] for k in AREAS}}
            else:
                sums[code] = add_sums(sums[code], part)
    out = []
    for code, found in sums.items():
        result = (
            progress_from_areas(found, date.fromisoformat(str(as_of)))
            if kind == "restoration"
            else found
        )
        out.append({"region": code, "kind": kinds[code], "name": names[code], "result": result})
    return out


def _provenance(
    engine: Engine, kind: str, inputs: Inputs, done: list[dict[str, Any]], split_km2: float
) -> dict[str, Any]:
    with engine.connect() as conn:
        boundaries = [dict(v._mapping) for v in active_versions(conn, "boundaries")]
        if kind == "restoration":
            degraded = [dict(v._mapping) for v in active_versions(conn, "degraded_areas")]
            return {
                "as_of": inputs.as_of,
                "boundary_layers": boundaries,
                "degraded_area_layers": degraded,
                "method": "analyses.restoration.progress_of_regions: per region as "
                "/api/restoration/progress, several kommuner measured in one pass",
                "software": f"geoservice {__version__}",
            }
        plans = [
            dict(v._mapping)
            for v in active_versions(conn, "land_use_plan")
            if v.version_id in inputs.plan_versions
        ]
        outside = _zones_total(conn, inputs.plan_versions) - sum(d["zones"] for d in done)
    table = active_table(engine)
    preset = stored_preset(engine, inputs.preset)
    land_cover = sorted({v for d in done for v in d["land_cover_versions"]})
    return {
        "plan_layers": plans,
        "boundary_layers": boundaries,
        "land_cover_versions": land_cover,
        "zones_outside_every_kommune": outside,
        "factor_table": table.describe(),
        "preset": preset.describe(),
        "peat_handling": inputs.peat_handling,
        "peat_excavated_share": excavated_share(inputs.peat_handling, inputs.peat_excavated_share),
        "partition": "a zone belongs to the kommune its point on surface lies in; a kommune "
        f"over {split_km2:g} km² is cut into grid cells, one task each; the others go "
        f"{KOMMUNER_PER_TASK} to a task",
        "method": la.GUIDE,
        "sources": citations(la.GUIDE, preset.source, *(f.source for f in table.factors.values())),
        "software": f"geoservice {__version__}",
    }


def _write(
    engine: Engine,
    run_id: int,
    results: list[dict[str, Any]],
    provenance: dict[str, Any],
    done: list[dict[str, Any]],
    started: float,
    phases: dict[str, float],
) -> None:
    """Every result and the run's status in one transaction (the time it took recorded
    with the engine: preparing and partitioning, the tasks, writing back)."""
    times = sorted(
        (
            {
                "key": d["key"],
                "items": d["zones"],
                "seconds": round(d["seconds"], 4),
                "cpu_seconds": round(d["cpu_seconds"], 4),
                "worker": d["worker"],
            }
            for d in done
        ),
        key=lambda t: str(t["key"]),
    )
    written = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO geoservice.national_result (run_id, region, region_kind, name, "
                "result) VALUES (:run, :region, :kind, :name, CAST(:result AS jsonb))"
            ),
            [
                {
                    "run": run_id,
                    "region": r["region"],
                    "kind": r["kind"],
                    "name": r["name"],
                    "result": _json(r["result"]),
                }
                for r in results
            ],
        )
        conn.execute(
            text(
                "UPDATE geoservice.national_run SET status = 'done', finished_at = now(), "
                "tasks_done = tasks_total, provenance = CAST(:p AS jsonb), "
                "task_times = CAST(:t AS jsonb), engine = engine || CAST(:e AS jsonb) "
                "WHERE id = :id"
            ),
            {
                "p": _json(provenance),
                "t": _json(times),
                "e": _json(
                    {
                        **{k: round(v, 3) for k, v in phases.items()},
                        "write_s": round(time.perf_counter() - written, 3),
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                ),
                "id": run_id,
            },
        )


def run_result(
    engine: Engine, run_id: int, *, limit: int | None = None, offset: int = 0
) -> dict[str, Any]:
    """A run's state and, once done, its results per region (paged with limit/offset)."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM geoservice.national_run WHERE id = :id"), {"id": run_id}
        ).first()
        if row is None:
            raise NotFound(f"No national run {run_id}; list them with GET /api/national/runs.")
        results = conn.execute(
            text(
                "SELECT region, region_kind, name, result FROM geoservice.national_result "
                "WHERE run_id = :id ORDER BY region_kind DESC, region LIMIT :lim OFFSET :off"
            ),
            {"id": run_id, "lim": limit, "off": offset},
        ).all()
        count = conn.execute(
            text("SELECT count(*) FROM geoservice.national_result WHERE run_id = :id"),
            {"id": run_id},
        ).scalar_one()
    m = row._mapping
    return {
        "id": m["id"],
        "kind": m["kind"],
        "status": m["status"],
        "request": m["request"],
        "created_at": m["created_at"].isoformat(),
        "started_at": m["started_at"].isoformat() if m["started_at"] else None,
        "finished_at": m["finished_at"].isoformat() if m["finished_at"] else None,
        "created_by": m["created_by"],
        "tasks_total": m["tasks_total"],
        "tasks_done": m["tasks_done"],
        "progress": round(m["tasks_done"] / m["tasks_total"], 4) if m["tasks_total"] else 0.0,
        "engine": m["engine"],
        "provenance": m["provenance"],
        "task_times": m["task_times"],
        "error": m["error"],
        "regions_total": int(count),
        "results": [
            {"region": r.region, "region_kind": r.region_kind, "name": r.name, **r.result}
            for r in results
        ],
    }


def list_runs(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The newest runs, without their results."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, kind, status, created_at, finished_at, tasks_total, tasks_done "
                "FROM geoservice.national_run ORDER BY id DESC LIMIT :n"
            ),
            {"n": limit},
        ).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "status": r.status,
            "created_at": r.created_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "tasks_total": r.tasks_total,
            "tasks_done": r.tasks_done,
            "href": f"/api/national/runs/{r.id}",
        }
        for r in rows
    ]


def fail_interrupted(engine: Engine) -> int:
    """Runs the service started and left queued or running when it stopped are failed
    (nothing was written); runs from the command line are the command's own."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                text(
                    "UPDATE geoservice.national_run SET status = 'failed', finished_at = now(), "
                    "error = 'The service stopped during the run; nothing was written. Start "
                    "it again.' WHERE status IN ('queued', 'running') "
                    "AND request->>'via' = 'api'"
                )
            ).rowcount
        )
