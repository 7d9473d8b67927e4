"""``geoservice map ...``: write any map page as one standalone HTML file for a case document.

The file carries Leaflet inline and needs no server, except for layers too big to embed,
which are drawn from the vector tiles of the service named by ``--server``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine

from core.errors import GeoServiceError
from geoservice.cli_words import cli_text
from geoservice.database import create_db_engine, resolve_database_url
from geoservice.settings import Settings

if TYPE_CHECKING:  # the map builders (folium) are imported by the commands that use them
    from maps.page import MapOptions, MapPage

app = typer.Typer(help="Write map pages as standalone HTML files.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

OutOption = Annotated[Path, typer.Option("--out", help="HTML file to write", dir_okay=False)]
ServerOption = Annotated[
    str | None,
    typer.Option(help="Service URL that big layers' vector tiles come from, e.g. http://gis:8000"),
]


def _write(out: Path, server: str | None, build: Callable[[Engine, MapOptions], MapPage]) -> None:
    from geoservice.map_options import map_options

    settings = Settings()
    options = replace(map_options(settings, tile_base_url=server or ""), standalone=True)
    if not server:  # no service to draw tiles from: embed whatever fits the budget
        options = replace(options, inline_feature_limit=10**9)
    try:
        engine = create_db_engine(resolve_database_url(settings), settings)
        try:
            with console.status("building the map"):
                rendered = build(engine, options).render(standalone=True)
        finally:
            engine.dispose()
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    out.write_text(rendered.html, encoding="utf-8")
    console.print(
        f"wrote {out} ({len(rendered.html.encode()) / 1e6:.2f} MB, "
        f"{sum(rendered.inline_features.values())} features embedded"
        + (f", tiles from {server}" if rendered.tile_layers else "")
        + ")"
    )


@app.command("layer")
def layer_cmd(
    layer_id: int,
    out: OutOption,
    version: Annotated[int | None, typer.Option(help="Layer version; default active")] = None,
    server: ServerOption = None,
) -> None:
    """Map of a layer version, styled by its kind."""
    from maps.layer_map import layer_map

    _write(out, server, lambda e, o: layer_map(e, layer_id, version, o))


@app.command("proposal")
def proposal_cmd(proposal_id: int, out: OutOption) -> None:
    """Map of an assessed proposal and its alternatives."""
    srid = Settings().storage_srid
    from maps.proposal_map import proposal_map

    _write(out, None, lambda e, o: proposal_map(e, proposal_id, o, srid))


@app.command("plan")
def plan_cmd(layer_id: int, out: OutOption) -> None:
    """Emissions map of a plan's building zones."""
    from maps.plan_map import plan_map

    _write(out, None, lambda e, o: plan_map(e, layer_id, o))


@app.command("restoration")
def restoration_cmd(
    out: OutOption,
    level: Annotated[str, typer.Option(help="kommune or fylke")] = "kommune",
    as_of: Annotated[str | None, typer.Option(help="Date of the newest year, YYYY-MM-DD")] = None,
    ecosystem: Annotated[str | None, typer.Option(help="Ecosystem type code")] = None,
) -> None:
    """Restoration progress per kommune or fylke, one layer per year."""
    from maps.restoration_map import restoration_map

    when = date.fromisoformat(as_of) if as_of else None
    _write(
        out,
        None,
        lambda e, o: restoration_map(e, o, level=level, as_of=when, ecosystem=ecosystem),
    )
