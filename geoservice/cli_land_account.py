"""``geoservice arealregnskap``: a plan's land account with carbon, from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from analyses.presets import DEFAULT_PRESET
from core.errors import GeoServiceError, InvalidInput
from core.i18n import LANGS, Lang, number, t
from geoservice.cli_carbon import ExcavatedShareOption, PeatHandlingOption, console, err_console
from geoservice.cli_words import cli_text
from geoservice.database import create_db_engine, resolve_database_url
from geoservice.settings import Settings


def _densities(values: list[str]) -> dict[int, float]:
    """``1110=2.5`` → {1110: 2.5}."""
    out: dict[int, float] = {}
    for value in values:
        code, _, density = value.partition("=")
        try:
            out[int(code)] = float(density.replace(",", "."))
        except ValueError:
            raise InvalidInput(
                "--boliger-per-daa takes arealformål=boliger per daa, e.g. 1110=2,5 "
                f"(got {value!r}).",
                code="bad_density",
            ) from None
    return out


def land_account_cmd(
    layer_id: Annotated[int, typer.Argument(help="Id of the land_use_plan layer (the new plan)")],
    version: Annotated[int | None, typer.Option(help="Version of the plan layer")] = None,
    compare: Annotated[
        int | None, typer.Option(help="Id of the plan in force, for the change table")
    ] = None,
    compare_version: Annotated[
        int | None, typer.Option(help="Version of the compared plan (or of this layer)")
    ] = None,
    boliger_per_daa: Annotated[
        list[str] | None,
        typer.Option("--boliger-per-daa", help="Dwellings per daa by arealformål: 1110=2,5"),
    ] = None,
    xlsx: Annotated[Path | None, typer.Option(help="Write the workbook (.xlsx) here")] = None,
    preset: Annotated[str, typer.Option(help="Method preset")] = DEFAULT_PRESET,
    peat_handling: PeatHandlingOption = "drained",
    peat_excavated_share: ExcavatedShareOption = None,
    lang: Annotated[str, typer.Option(help="nb (bokmål) or en")] = "nb",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON")] = False,
) -> None:
    """Arealregnskap: status per arealformål and land quality, the building reserve ranked by
    carbon at stake, and (with --compare) what moved into and out of building zones."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from analyses.land_account import land_account

    if lang not in LANGS:
        err_console.print("[bold red]error[/]: --lang takes nb or en.")
        raise typer.Exit(code=2)
    language: Lang = "en" if lang == "en" else "nb"
    settings = Settings()
    try:
        densities = _densities(boliger_per_daa or [])
        engine = create_db_engine(resolve_database_url(settings), settings)
        with Progress(
            TextColumn("[bold]areas"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=as_json,
        ) as bar:
            task = bar.add_task("areas", total=None)
            result = land_account(
                engine,
                layer_id,
                version=version,
                compare_layer_id=compare,
                compare_version=compare_version,
                preset_name=preset,
                peat_handling=peat_handling,  # type: ignore[arg-type]
                peat_excavated_share=peat_excavated_share,
                dwellings_per_daa=densities,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        engine.dispose()
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    if xlsx is not None:
        from maps.land_account_xlsx import land_account_workbook

        xlsx.write_bytes(land_account_workbook(result, language))
        err_console.print(f"{xlsx}")
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    reserve = Table(title=t("la.sheet_reserve", language))
    for column in (
        t("la.col_fid", language),
        t("la.col_name", language),
        t("la.col_formal", language),
        t("la.col_reserve", language),
        t("la.col_emission", language),
    ):
        reserve.add_column(column)
    for z in result["reserve"]["zones"]:
        reserve.add_row(
            str(z["fid"]),
            z["name"] or "",
            f"{z['arealformal']} {z['arealformal_name']}",
            number(z["reserve_daa"], 1, language),
            number(z["emission_t_co2e"].get("central", 0), 0, language),
        )
    console.print(reserve)
    change = result.get("change")
    if change:
        console.print(
            f"{t('la.into', language)}: {number(change['into_daa'], 1, language)} daa · "
            f"{t('la.out', language)}: {number(change['out_daa'], 1, language)} daa · "
            f"{t('la.net', language)}: {number(change['net_emission_t_co2e'], 0, language)} t CO2e"
        )
