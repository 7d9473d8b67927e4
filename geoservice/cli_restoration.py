"""``geoservice restoration ...``: register projects from a file, print progress."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.errors import GeoServiceError
from geoservice import access
from geoservice.cli_words import cli_text
from geoservice.database import create_db_engine, resolve_database_url
from geoservice.settings import Settings

app = typer.Typer(help="Restoration registry and progress.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    crs: Annotated[str | None, typer.Option(help="CRS if the file does not say")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer inside a GeoPackage")] = None,
) -> None:
    """Register every feature of a file as a project (all or nothing)."""
    from analyses import restoration
    from layers.reader import features_from_file  # imported on use: GDAL and pandas

    settings = Settings()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            features, crs_label = features_from_file(path, Path(workdir), layer=layer, crs=crs)
        engine = create_db_engine(resolve_database_url(settings), settings)
        ids = restoration.import_projects(
            engine,
            features,
            crs=crs_label,
            srid=settings.storage_srid,
            user=access.command_line_user(),
        )
        access.record_command(engine, f"restoration import {path.name}", {"project_ids": ids})
        engine.dispose()
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    console.print(f"registered {len(ids)} projects: {', '.join(map(str, ids))}")


@app.command("progress")
def progress_cmd(
    region: Annotated[
        str, typer.Option(help="kommunenummer, fylkesnummer, a kommune or fylke name (Ås), or NO")
    ] = "NO",
    as_of: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default today)")] = None,
    ecosystem: Annotated[str | None, typer.Option(help="Ecosystem type code")] = None,
) -> None:
    """Print progress towards Target 2 and the national target."""
    from analyses import restoration

    settings = Settings()
    try:
        when = date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter("--as-of takes a date as YYYY-MM-DD") from exc
    try:
        engine = create_db_engine(resolve_database_url(settings), settings)
        result = restoration.progress(engine, region=region, ecosystem=ecosystem, as_of=when)
        engine.dispose()
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    console.print(
        f"{result['region']} ({result['region_kind']}), {result['ecosystem'] or 'all ecosystems'}"
        f", {result['as_of']}: {result['under_restoration_ha']:,.1f} of "
        f"{result['baseline_degraded_ha']:,.1f} ha degraded under restoration "
        f"({result['share']:.1%}); {result['restoration_outside_baseline_ha']:,.1f} ha outside "
        f"the baseline; pace {result['pace_last_3_years_ha_per_year']:,.2f} ha/yr (last 3 years)"
    )
    table = Table(
        "target",
        "share",
        "by",
        "target ha",
        "remaining ha",
        "needed ha/yr",
        "projected",
        "on track",
    )
    for t in result["targets"]:
        table.add_row(
            t["code"],
            f"{t['share']:.0%}",
            str(t["year"]),
            f"{t['target_ha']:,.1f}",
            f"{t['remaining_ha']:,.1f}",
            "-" if t["pace_needed_ha_per_year"] is None else f"{t['pace_needed_ha_per_year']:,.2f}",
            "-" if t["projected_year"] is None else f"{t['projected_year']:.0f}",
            "yes" if t["on_track"] else "no",
        )
    console.print(table)
