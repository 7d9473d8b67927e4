"""``geoservice assess``: a building proposal's carbon from the command line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from analyses.presets import DEFAULT_PRESET
from core.errors import GeoServiceError, InvalidInput
from geoservice import access
from geoservice.database import create_db_engine, resolve_database_url
from geoservice.settings import Settings
from layers.reader import read_vector_file

# The peat choices, the same for a proposal and a plan.
PeatHandlingOption = Annotated[
    str, typer.Option(help="Peat under the built part: drained, filled or excavated")
]
ExcavatedShareOption = Annotated[
    float | None,
    typer.Option(help="Share of the built mire dug out and removed (loses its stock)"),
]
console = Console()
err_console = Console(stderr=True)


def _footprint(path: Path, layer: str | None) -> tuple[dict[str, object], str | None]:
    with tempfile.TemporaryDirectory() as workdir:
        read, file_crs = read_vector_file(path, Path(workdir), layer=layer)
    if not read:
        raise InvalidInput(f"{path.name} holds no geometry.", code="footprint_empty")
    features = [{"type": "Feature", "geometry": g, "properties": {}} for g, _ in read]
    return {"type": "FeatureCollection", "features": features}, file_crs


def assess_cmd(
    proposal_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    landuse: Annotated[int, typer.Option(help="Planned arealformål, e.g. 1110")] = 1110,
    preset: Annotated[str, typer.Option(help="Method preset")] = DEFAULT_PRESET,
    built_share: Annotated[float | None, typer.Option(help="0–1; default per formål")] = None,
    peat_handling: PeatHandlingOption = "drained",
    peat_excavated_share: ExcavatedShareOption = None,
    crs: Annotated[str | None, typer.Option(help="CRS if the file does not say")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer inside a GeoPackage")] = None,
    alternative: Annotated[
        list[Path] | None, typer.Option(help="Alternative footprint file (repeatable)")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the class table")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the printable HTML report")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON")] = False,
) -> None:
    """Assess the carbon a building proposal would release (stored like API assessments)."""
    settings = Settings()
    try:
        footprint, file_crs = _footprint(proposal_file, layer)
        alternatives = {}
        for alt in alternative or []:
            alternatives[alt.stem], _ = _footprint(alt, None)
        engine = create_db_engine(resolve_database_url(settings), settings)
        from analyses.assessment import ProposalRequest, assess

        result = assess(
            engine,
            ProposalRequest(
                footprint=footprint,
                arealformal=landuse,
                crs=crs or file_crs or "EPSG:4326",
                built_share=built_share,
                preset=preset,
                peat_handling=peat_handling,  # type: ignore[arg-type]
                peat_excavated_share=peat_excavated_share,
                name=proposal_file.stem,
                alternatives=alternatives,
            ),
            storage_srid=settings.storage_srid,
        )
        access.record_command(engine, f"assess {proposal_file.name}", {"proposal_id": result["id"]})
        engine.dispose()
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {exc.detail}")
        raise typer.Exit(code=1) from exc
    if csv_out:
        from analyses.tables import to_csv

        csv_out.write_text(to_csv(result), encoding="utf-8")
    if report:
        from maps.report import proposal_report

        engine = create_db_engine(resolve_database_url(settings), settings)
        report.write_text(
            proposal_report(engine, result["id"], storage_srid=settings.storage_srid),
            encoding="utf-8",
        )
        engine.dispose()
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    for fp in result["footprints"]:
        table = Table(
            title=f"{fp['name']}: {fp['area_daa']:.1f} daa, built share {fp['built_share']:.0%}"
        )
        for column in ("class", "daa", "stock t C", "emission t CO2e", "factor"):
            table.add_column(column, justify="left" if column in ("class", "factor") else "right")
        for c in fp["classes"]:
            name = c.get("arealtype_name") or "no data"
            if c.get("peat_depth_class"):
                name += f" ({c['peat_depth_class']})"
            if c.get("skogbonitet") in (11, 12, 13, 14, 15):
                name += f" bonitet {c['skogbonitet']}"
            factor = c.get("factor") or {}
            table.add_row(
                name,
                f"{c['area_daa']:.2f}",
                f"{(c.get('stock_t_c') or {}).get('total', {}).get('central', 0):,.0f}",
                f"{(c.get('emission_t_co2e') or {}).get('central', 0):,.0f}",
                f"{factor.get('lucode', '-')} {factor.get('status', '')}",
            )
        console.print(table)
        e = fp["emission_t_co2e"]
        console.print(
            f"emission {e.get('central', 0):,.0f} t CO2e (range {e.get('low', 0):,.0f}–"
            f"{e.get('high', 0):,.0f}); stock preserved on the unbuilt part "
            f"{fp['preserved_unbuilt_t_c'].get('central', 0):,.0f} t C; forgone sequestration "
            f"{fp['forgone_sequestration_t_co2']:,.0f} t CO2"
        )
        flags = fp["flags"]
        if flags["over_2000_t_co2e"] or flags["over_5_daa_carbon_rich"]:
            console.print(
                "[bold yellow]KU relevant[/]: over 2 000 t CO2e or over 5 daa of "
                "carbon-rich land (M-1941 §2.9)"
            )
    prov = result["provenance"]
    console.print(
        f"proposal {result['id']}; preset {prov['preset']['name']} v{prov['preset']['version']}; "
        f"factor table {prov['factor_table']['name']} v{prov['factor_table']['version']}; "
        f"least carbon loss: {result['least_carbon_loss']}"
    )


def plans_cmd(
    layer_id: Annotated[int, typer.Argument(help="Id of a land_use_plan layer")],
    preset: Annotated[str, typer.Option(help="Method preset")] = DEFAULT_PRESET,
    peat_handling: PeatHandlingOption = "drained",
    peat_excavated_share: ExcavatedShareOption = None,
    rezone: Annotated[
        list[int] | None, typer.Option(help="Zone (feature id) to return to LNFR; repeatable")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON")] = False,
) -> None:
    """Analyse every building zone of a land-use plan, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from analyses.plans import analyse_plan

    settings = Settings()
    try:
        engine = create_db_engine(resolve_database_url(settings), settings)
        with Progress(
            TextColumn("[bold]zones"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=as_json,
        ) as bar:
            task = bar.add_task("zones", total=None)
            result = analyse_plan(
                engine,
                layer_id,
                preset_name=preset,
                peat_handling=peat_handling,  # type: ignore[arg-type]
                peat_excavated_share=peat_excavated_share,
                rezone=rezone or [],
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        engine.dispose()
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {exc.detail}")
        raise typer.Exit(code=1) from exc
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    zones = {z["fid"]: z for z in result["zones"]}
    table = Table(
        title=f"{result['plan']} (version {result['plan_version']}): building zones "
        "by emission if built"
    )
    for column in ("zone", "arealformål", "daa", "carbon-rich daa", "t CO2e"):
        table.add_column(column, justify="left" if column in ("arealformål",) else "right")
    for fid in result["ranking_by_emission"]:
        z = zones[fid]
        table.add_row(
            str(fid),
            f"{z['arealformal']} {z['arealformal_name']}",
            f"{z['area_daa']:.1f}",
            f"{z['flags']['carbon_rich_daa']:.1f}",
            f"{z['emission_t_co2e'].get('central', 0):,.0f}",
        )
    console.print(table)
    console.print(f"total {result['total_emission_t_co2e']:,.0f} t CO2e")
    if result["rezoning"]["zones"]:
        console.print(
            f"returning zones {result['rezoning']['zones']} to LNFR avoids "
            f"{result['rezoning']['emission_avoided_t_co2e']:,.0f} t CO2e"
        )
