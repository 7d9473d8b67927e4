"""``geoservice national arealregnskap|restoration``: every kommune at once, on Dask."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from analyses.presets import DEFAULT_PRESET
from core.errors import GeoServiceError
from core.i18n import number, percent
from geoservice.cli_carbon import ExcavatedShareOption, PeatHandlingOption, console, err_console
from geoservice.cli_words import cli_text
from geoservice.database import create_db_engine, resolve_database_url
from geoservice.settings import Settings

app = typer.Typer(help="National runs: every kommune at once on Dask (a local cluster by default).")

SchedulerOption = Annotated[
    str | None,
    typer.Option(
        help="Address of a running Dask scheduler (tcp://host:8786); default "
        "GEOSERVICE_DASK_SCHEDULER, else a local cluster"
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(min=1, help="Worker processes of the local cluster (GEOSERVICE_DASK_WORKERS)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the whole run as JSON")]


def _dask_progress(futures: list[Any]) -> None:
    """Dask's own progress bar, drawn on stderr (stdout is kept for --json)."""
    from distributed import progress

    with contextlib.redirect_stdout(sys.stderr):
        progress(futures)


def _run(kind: str, request: dict[str, Any], scheduler: str | None, workers: int | None) -> Any:
    from analyses import national

    settings = Settings()
    engine = create_db_engine(resolve_database_url(settings), settings)
    try:
        run_id = national.create_run(engine, kind, {**request, "via": "cli"})
        where = scheduler or settings.dask_scheduler
        n = workers or settings.dask_workers
        err_console.print(
            f"nasjonal kjøring {run_id}: {kind} på "
            + (f"Dask-klyngen på {where}" if where else f"en lokal Dask-klynge med {n} arbeidere")
        )
        try:
            with national.dask_client(where, n, settings.dask_connect_timeout_s) as client:
                return national.execute_run(engine, run_id, client, on_submit=_dask_progress)
        except national.SchedulerUnreachable as exc:
            national.fail_run(engine, run_id, str(exc))
            err_console.print(f"[bold red]error[/]: {exc}")
            raise typer.Exit(code=1) from exc
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    finally:
        engine.dispose()


def _footer(run: dict[str, Any]) -> None:
    engine = run["engine"] or {}
    err_console.print(
        f"\nkjøring {run['id']}: {run['regions_total']} regioner, {run['tasks_total']} oppgaver "
        f"på {engine.get('workers')} arbeidere, {number(engine.get('seconds', 0), 1)} s; "
        f"GET /api/national/runs/{run['id']} gir alle regionene"
    )


@app.command("arealregnskap")
def arealregnskap_cmd(
    plan_layer: Annotated[
        list[int] | None,
        typer.Option("--plan-layer", help="Plan layer id (repeat); default every plan layer"),
    ] = None,
    preset: Annotated[str, typer.Option(help="Method preset")] = DEFAULT_PRESET,
    peat_handling: PeatHandlingOption = "drained",
    peat_excavated_share: ExcavatedShareOption = None,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    top: Annotated[
        int, typer.Option(min=0, help="Kommuner shown, most carbon at stake first")
    ] = 20,
    as_json: JsonOption = False,
) -> None:
    """The arealreserve of every kommune with the carbon at stake, valued as the land
    account values it."""
    request = {
        "plan_layers": plan_layer or None,
        "preset": preset,
        "peat_handling": peat_handling,
        "peat_excavated_share": peat_excavated_share,
    }
    run = _run("arealregnskap", request, scheduler, workers)
    if as_json:
        console.print_json(json.dumps(run, default=str))
        return
    rows = sorted(run["results"], key=lambda r: -r["emission_t_co2e"])
    table = Table(title="Arealreserve per kommune (t CO2e ved utbygging, 20 år)")
    for column in ("Kommune", "Navn", "Soner", "Reserve daa", "Utslipp t CO2e", "Lager t C"):
        table.add_column(column)
    for r in rows[:top]:
        table.add_row(
            r["region"],
            r["name"] or "",
            str(r["reserve_zones"]),
            number(r["reserve_daa"], 1),
            number(r["emission_t_co2e"], 0),
            number(r["stock_t_c"], 0),
        )
    console.print(table)
    _footer(run)


@app.command("restoration")
def restoration_cmd(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Day measured (YYYY-MM-DD); default today")
    ] = None,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    top: Annotated[int, typer.Option(min=0, help="Regions shown")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Restoration progress (Target 2, 30 % by 2030; the national 15 %) for every kommune
    and fylke."""
    if as_of is not None:
        try:
            date.fromisoformat(as_of)
        except ValueError:
            err_console.print(
                f"[bold red]error[/]: --as-of takes a day as 2026-01-31, not {as_of!r}."
            )
            raise typer.Exit(code=2) from None
    run = _run("restoration", {"as_of": as_of}, scheduler, workers)
    if as_json:
        console.print_json(json.dumps(run, default=str))
        return
    table = Table(title="Restaurering per fylke og kommune")
    for column in ("Region", "Navn", "Degradert ha", "Restaurert ha", "Andel"):
        table.add_column(column)
    for r in run["results"][:top]:
        table.add_row(
            r["region"],
            r["name"] or "",
            number(r["baseline_degraded_ha"], 1),
            number(r["under_restoration_ha"], 1),
            percent(r["share"], 1),
        )
    console.print(table)
    _footer(run)
