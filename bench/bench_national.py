"""National runs: a synthetic country on the 357 real kommuner (3 000 000 land-cover squares,
100 000 plan zones, a 300 000-square degraded baseline, 100 000 restoration projects), the
single-PostGIS path against Dask with 1 and 2 local workers in the same run, with the
per-task times, and a model of the time on N machines built from them.

The single-PostGIS path is what exists without Dask: the land account of the whole plan
layer in one process (which also computes its status table), and restoration per kommune and
fylke by ``shares_by_region_over`` (every region in one SQL pass, for the same two days a
national run measures: the day and three years before, for the pace).

The model (stated in the rows): a run costs its serial part (listing the kommuner and
writing back, measured in the run, and the scheduler's share of each task's dispatch) plus
the tasks' work spread over N workers, never less than the longest task:
    T(N) = prepare + write + tasks × a + max(longest task, (Σ task time + tasks × b) / N).
The dispatch cost of a task is measured by running as many empty tasks on the same cluster
with 1 and with 2 workers: c(N) = a + b / N, so a = 2 c(2) − c(1) is the scheduler's serial
part and b the part the workers spread.
It assumes each worker reads from a PostGIS that keeps up (a read replica per group of
workers, or a database with cores for the database share of N tasks at once: the share is
wall minus the worker's CPU); the rows give Σ database time / 16, the floor one shared
16-core PostGIS would put under the tasks.

``BENCH_NATIONAL_COVER`` / ``_ZONES`` / ``_BASELINE`` / ``_PROJECTS`` change the sizes.
"""

from __future__ import annotations

import os
import time
from datetime import date
from typing import Any

from analyses import national
from analyses.land_account import land_account
from analyses.restoration import shares_by_region_over
from bench.common import throwaway_postgis
from bench.country import build_country
from geoservice.database import create_db_engine
from geoservice.settings import Settings

AS_OF = date(2026, 1, 1)
MODEL_WORKERS = (1, 2, 4, 8, 16, 32, 64)


def _dask_run(engine: Any, kind: str, workers: int, request: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    with national.dask_client(None, workers) as client:
        started = time.perf_counter() - t0
        run_id = national.create_run(engine, kind, request)
        run = national.execute_run(engine, run_id, client)
        # The scheduler's own cost per task: as many empty tasks on the same cluster.
        t1 = time.perf_counter()
        client.gather(client.map(abs, range(run["tasks_total"]), pure=False))
        run["empty_tasks_s"] = time.perf_counter() - t1
    if run["status"] != "done":
        raise AssertionError(run["error"])
    run["cluster_start_s"] = started
    run["wall_s"] = time.perf_counter() - t0 - run["empty_tasks_s"]
    return run


def _task_stats(run: dict[str, Any]) -> dict[str, float]:
    times = run["task_times"]
    seconds = sorted(t["seconds"] for t in times)
    return {
        "tasks": len(times),
        "task_sum_s": sum(seconds),
        "task_cpu_s": sum(t["cpu_seconds"] for t in times),
        "task_median_s": seconds[len(seconds) // 2],
        "task_max_s": seconds[-1],
    }


def _model(kind: str, one: dict[str, Any], two: dict[str, Any]) -> list[dict[str, Any]]:
    """T(N) from the 1-worker run's measured parts (there a task had one core and PostGIS
    the other, as a worker with its own machine and database would), and the dispatch cost
    per task from the empty tasks on 1 and 2 workers."""
    stats = _task_stats(one)
    engine = one["engine"]
    c1 = one["empty_tasks_s"] / stats["tasks"]
    c2 = two["empty_tasks_s"] / stats["tasks"]
    scheduler = min(max(2 * c2 - c1, 0.0), c1)
    spread = c1 - scheduler
    serial = engine["prepare_s"] + engine["write_s"] + stats["tasks"] * scheduler
    work = stats["task_sum_s"] + stats["tasks"] * spread
    db_share = max(stats["task_sum_s"] - stats["task_cpu_s"], 0.0)
    base = serial + max(stats["task_max_s"], work)
    rows = []
    for n in MODEL_WORKERS:
        t = serial + max(stats["task_max_s"], work / n)
        rows.append(
            {
                "bench": "national",
                "case": f"model, {kind}",
                "workers": n,
                "model_s": round(t, 1),
                "speedup": round(base / t, 2),
                "efficiency": round(base / t / n, 2),
                "serial_s": round(serial, 2),
                "scheduler_serial_per_task_ms": round(1000 * scheduler, 3),
                "dispatch_spread_per_task_ms": round(1000 * spread, 3),
                "longest_task_s": round(stats["task_max_s"], 2),
                "db_share_of_task_time": round(db_share / stats["task_sum_s"], 2),
                "one_postgis_16_cores_floor_s": round(db_share / 16, 1),
            }
        )
    return rows


def run() -> list[dict[str, Any]]:
    """Build the country, then the single path, Dask 1 worker, Dask 2 workers."""
    sizes = {
        "land_cover": int(os.environ.get("BENCH_NATIONAL_COVER", "3000000")),
        "zones": int(os.environ.get("BENCH_NATIONAL_ZONES", "100000")),
        "baseline": int(os.environ.get("BENCH_NATIONAL_BASELINE", "300000")),
        "projects": int(os.environ.get("BENCH_NATIONAL_PROJECTS", "100000")),
    }
    rows: list[dict[str, Any]] = []
    with throwaway_postgis() as url:
        settings = Settings(database_url=url, migrate_on_start=False, db_statement_timeout_ms=0)
        engine = create_db_engine(url, settings)
        t0 = time.perf_counter()
        country = build_country(engine, **sizes)
        print(f"  country built in {time.perf_counter() - t0:.0f} s: {country}", flush=True)
        case = (
            f"{country.kommuner} kommuner, {country.land_cover} land-cover polygons, "
            f"{country.zones} plan zones, {country.baseline} baseline, "
            f"{country.projects} projects"
        )

        t0 = time.perf_counter()
        single = land_account(engine, country.plan_layer_id)
        single_ar = time.perf_counter() - t0
        print(f"  single path, arealregnskap: {single_ar:.0f} s", flush=True)
        t0 = time.perf_counter()
        three_back = AS_OF.replace(year=AS_OF.year - 3)
        for level in ("kommune", "fylke"):
            shares_by_region_over(engine, level=level, dates=[AS_OF, three_back])
        single_rest = time.perf_counter() - t0
        print(f"  single path, restoration: {single_rest:.0f} s", flush=True)

        runs: dict[tuple[str, int], dict[str, Any]] = {}
        for workers in (1, 2):
            runs["arealregnskap", workers] = _dask_run(engine, "arealregnskap", workers, {})
            runs["restoration", workers] = _dask_run(
                engine, "restoration", workers, {"as_of": AS_OF.isoformat()}
            )
            print(
                f"  dask {workers} worker(s): arealregnskap "
                f"{runs['arealregnskap', workers]['wall_s']:.0f} s, restoration "
                f"{runs['restoration', workers]['wall_s']:.0f} s",
                flush=True,
            )
        engine.dispose()

    reserve_total = single["reserve"]["total"]
    singles = {"arealregnskap": single_ar, "restoration": single_rest}
    for kind in ("arealregnskap", "restoration"):
        rows.append(
            {
                "bench": "national",
                "case": case,
                "run": f"single PostGIS path, {kind}",
                "wall_s": round(singles[kind], 1),
            }
        )
        for workers in (1, 2):
            r = runs[kind, workers]
            stats = _task_stats(r)
            rows.append(
                {
                    "bench": "national",
                    "case": case,
                    "run": f"dask {workers} worker(s), {kind}",
                    "wall_s": round(r["wall_s"], 1),
                    "vs_single": round(r["wall_s"] / singles[kind], 2),
                    "cluster_start_s": round(r["cluster_start_s"], 1),
                    "prepare_s": r["engine"]["prepare_s"],
                    "compute_s": r["engine"]["compute_s"],
                    "write_s": r["engine"]["write_s"],
                    "empty_tasks_s": round(r["empty_tasks_s"], 2),
                    "tasks": stats["tasks"],
                    "task_sum_s": round(stats["task_sum_s"], 1),
                    "task_median_s": round(stats["task_median_s"], 3),
                    "task_max_s": round(stats["task_max_s"], 2),
                    "regions": r["regions_total"],
                }
            )
    both = sum(runs[k, 2]["wall_s"] for k in ("arealregnskap", "restoration"))
    rows.append(
        {
            "bench": "national",
            "case": case,
            "run": "whole country, both runs, dask 2 workers (target < 600 s)",
            "wall_s": round(both, 1),
            "reserve_zones": reserve_total["zones"],
            "reserve_emission_t_co2e": reserve_total["emission_t_co2e"],
        }
    )
    for kind in ("arealregnskap", "restoration"):
        rows += _model(kind, runs[kind, 1], runs[kind, 2])
    return rows
