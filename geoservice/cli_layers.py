"""``geoservice layers ...``: import, list and export layers from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import GeoServiceError
from geoservice import access
from geoservice.cli_words import cli_text
from geoservice.database import create_db_engine, resolve_database_url
from geoservice.settings import Settings

if TYPE_CHECKING:
    from layers.export import ExportFormat

app = typer.Typer(help="Upload, list and export layers.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _parse_field_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        attr, sep, source = pair.partition("=")
        if not sep or not attr or not source:
            raise typer.BadParameter(
                f"{pair!r}: write ATTRIBUTE=SOURCE_FIELD, e.g. arealtype=ARTYPE"
            )
        mapping[attr.strip()] = source.strip()
    return mapping


@app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    kind: Annotated[str, typer.Option(help="Layer kind, e.g. land_cover, land_use_plan")],
    name: Annotated[str, typer.Option(help="Layer name; an existing name gets a new version")],
    crs: Annotated[str | None, typer.Option(help="CRS when the file lacks one, EPSG:n")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer inside a GeoPackage")] = None,
    field: Annotated[
        list[str] | None, typer.Option("--field", help="ATTRIBUTE=SOURCE_FIELD (repeatable)")
    ] = None,
    licence: Annotated[str | None, typer.Option(help="Licence / attribution text")] = None,
    keep_unknown: Annotated[bool, typer.Option(help="Store unknown codes as unknown")] = False,
    check_extent: Annotated[bool, typer.Option(help="Refuse data outside Norway")] = True,
    kommune: Annotated[
        str | None, typer.Option(help="Kommunenummer the data must lie in (plans: their KOMM)")
    ] = None,
    pools: Annotated[
        str | None, typer.Option(help="carbon_density rasters: pools, e.g. c_above,c_below")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Validate a file and publish it as a new version of a layer (all or nothing)."""
    settings = Settings()
    try:
        # Imported on use: GDAL, pandas and rasterio take a second to load (--help does not).
        from layers.ingest import ImportOptions, import_file
        from layers.rasters import parse_pools

        engine = create_db_engine(resolve_database_url(settings), settings)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=as_json,
        ) as progress:
            task = progress.add_task(f"importing {path.name}", total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total or None)

            result = import_file(
                engine,
                path,
                ImportOptions(
                    kind=kind,
                    name=name,
                    crs=crs,
                    layer=layer,
                    field_map=_parse_field_map(field or []),
                    licence=licence,
                    uploader=access.command_line_user(),
                    keep_unknown=keep_unknown,
                    check_extent=check_extent,
                    kommune=kommune,
                    pools=parse_pools(pools),
                ),
                storage_srid=settings.storage_srid,
                progress=report,
                data_dir=settings.data_path,
            )
        access.record_command(
            engine,
            f"layers import {path.name}",
            {"layer_id": result.layer_id, "version_after": result.version},
        )
        engine.dispose()
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
        return
    repairs = result.repairs
    console.print(
        f"layer [bold]{result.name}[/] (id {result.layer_id}) version {result.version}: "
        f"{result.feature_count} features ({result.geometry_type}), "
        f"{result.source_crs} -> {result.storage_crs}; repaired {repairs['repaired']}, "
        f"dropped {repairs['dropped_empty'] + repairs['dropped_wrong_type']}"
        + (f", arcs linearised {repairs['linearised']}" if repairs.get("linearised") else "")
    )


@app.command("list")
def list_cmd(
    limit: Annotated[int, typer.Option(min=1)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Show the layers and their active versions."""
    from layers import catalog

    settings = Settings()
    try:
        engine = create_db_engine(resolve_database_url(settings), settings)
        items, total = catalog.list_layers(engine, limit=limit, offset=offset)
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    table = Table("id", "name", "kind", "version", "features", "source", "uploaded")
    for item in items:
        v = item["active_version"] or {}
        table.add_row(
            str(item["id"]),
            item["name"],
            item["kind"],
            str(v.get("version", "-")),
            str(v.get("feature_count", "-")),
            str(v.get("source_filename", "-")),
            str(v.get("created_at", "-"))[:19],
        )
    console.print(table)
    console.print(f"{len(items)} of {total} layers")


@app.command("export")
def export_cmd(
    layer_id: Annotated[int, typer.Argument()],
    out: Annotated[Path, typer.Option(help="Folder to write to")] = Path("."),
    format: Annotated[str, typer.Option(help="geojson, gpkg or (rasters) tif")] = "gpkg",
    version: Annotated[int | None, typer.Option(help="Default: the active version")] = None,
    crs: Annotated[str | None, typer.Option(help="Output CRS, default the storage CRS")] = None,
) -> None:
    """Write a layer version to a GeoJSON or GeoPackage file."""
    from layers.export import export_layer  # geopandas: only when exporting

    if format not in ("geojson", "gpkg", "tif"):
        raise typer.BadParameter("format must be geojson, gpkg or tif")
    settings = Settings()
    try:
        engine = create_db_engine(resolve_database_url(settings), settings)
        out.mkdir(parents=True, exist_ok=True)
        path = export_layer(
            engine,
            layer_id,
            out,
            fmt=cast("ExportFormat", format),
            version=version,
            crs=crs,
            storage_srid=settings.storage_srid,
        )
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    console.print(f"wrote {path}")
