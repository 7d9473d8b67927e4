"""``geoservice assess``: a building proposal's carbon from the command line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from analyses.presets import DEFAULT_PRESET
from core.errors import GeoServiceError, InvalidInput
from core.i18n import LANGS, Lang, footprint_label, number, percent, t
from geoservice import access
from geoservice.cli_words import cli_text
from geoservice.database import create_db_engine, resolve_database_url
from geoservice.settings import Settings

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
    from layers.reader import read_vector_file  # imported on use: it loads GDAL and pandas

    with tempfile.TemporaryDirectory() as workdir:
        read, file_crs = read_vector_file(path, Path(workdir), layer=layer)
    if not read:
        raise InvalidInput(f"{path.name} holds no geometry.", code="footprint_empty")
    features = [
        {"type": "Feature", "geometry": g, "properties": {"navn": a.get("navn") or a.get("name")}}
        for g, a in read
    ]
    return {"type": "FeatureCollection", "features": features}, file_crs


def _named(footprint: dict[str, object]) -> bool:
    from analyses.assessment.footprint import footprint_name

    return footprint_name(footprint) is not None


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
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Write the report as PDF")] = None,
    lang: Annotated[str, typer.Option(help="Report and output language: nb or en")] = "nb",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON")] = False,
) -> None:
    """Assess the carbon a building proposal would release (stored like API assessments)."""
    language = _language(lang)
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
                name=None if _named(footprint) else proposal_file.stem,
                alternatives=alternatives,
            ),
            storage_srid=settings.storage_srid,
        )
        access.record_command(engine, f"assess {proposal_file.name}", {"proposal_id": result["id"]})
        engine.dispose()
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    if csv_out:
        from analyses.tables import to_csv

        csv_out.write_text(to_csv(result), encoding="utf-8")
    if report or pdf:
        from maps.report import proposal_report

        engine = create_db_engine(resolve_database_url(settings), settings)
        html = proposal_report(
            engine, result["id"], storage_srid=settings.storage_srid, lang=language
        )
        engine.dispose()
        if report:
            report.write_text(html, encoding="utf-8")
        if pdf:
            from maps.pdf import html_to_pdf

            pdf.write_bytes(html_to_pdf(html))
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    _print_result(result, language)


def _language(lang: str) -> Lang:
    if lang not in LANGS:
        err_console.print(f"[bold red]error[/]: {t('cli.bad_lang', 'nb', given=lang)}")
        raise typer.Exit(code=2)
    return "en" if lang == "en" else "nb"


def _print_result(result: dict[str, Any], lang: Lang) -> None:
    """The footprints as tables, numbers the way the reader's language writes them."""
    for fp in result["footprints"]:
        horizon = (
            t("horizon.years", lang, years=fp["horizon_years"])
            if fp.get("horizon_years")
            else t("horizon.none", lang)
        )
        table = Table(
            title=t(
                "cli.fp_title",
                lang,
                name=footprint_label(fp["name"], lang),
                daa=number(fp["area_daa"], 1, lang),
                share=percent(fp["built_share"], 0, lang),
            )
        )
        columns = (
            t("col.class", lang),
            t("col.daa", lang),
            t("col.stock", lang),
            t("col.emission", lang, horizon=horizon),
            t("col.factor", lang),
        )
        for i, column in enumerate(columns):
            table.add_column(column, justify="left" if i in (0, 4) else "right")
        for c in fp["classes"]:
            factor = c.get("factor") or {}
            status = factor.get("status")
            table.add_row(
                f"{c['arealtype']} {c.get('arealtype_name') or t('class.no_data', lang)}"
                + (
                    f" ({t('peat.' + c['peat_depth_class'], lang)})"
                    if c.get("peat_depth_class")
                    else ""
                )
                + (
                    ", " + t("class.bonitet", lang, code=c["skogbonitet"])
                    if c.get("skogbonitet") in (11, 12, 13, 14, 15)
                    else ""
                ),
                number(c["area_daa"], 2, lang),
                number((c.get("stock_t_c") or {}).get("total", {}).get("central", 0), 0, lang),
                number((c.get("emission_t_co2e") or {}).get("central", 0), 0, lang),
                f"{factor.get('lucode', '-')} {t('status.' + status, lang) if status else ''}",
            )
        console.print(table)
        e = fp["emission_t_co2e"]
        console.print(
            t(
                "cli.emission",
                lang,
                central=number(e.get("central", 0), 0, lang),
                low=number(e.get("low", 0), 0, lang),
                high=number(e.get("high", 0), 0, lang),
                preserved=number(fp["preserved_unbuilt_t_c"].get("central", 0), 0, lang),
                forgone=number(fp["forgone_sequestration_t_co2"], 0, lang),
            )
        )
        flags = fp["flags"]
        if flags["over_2000_t_co2e"] or flags["over_5_daa_carbon_rich"]:
            console.print(f"[bold yellow]{t('cli.ku', lang)}[/]")
    prov = result["provenance"]
    console.print(
        t(
            "cli.done",
            lang,
            id=result["id"],
            preset=prov["preset"]["name"],
            preset_version=prov["preset"]["version"],
            table=prov["factor_table"]["name"],
            table_version=prov["factor_table"]["version"],
            least=footprint_label(result["least_carbon_loss"], lang),
        )
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
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    zones = {z["fid"]: z for z in result["zones"]}
    table = Table(
        title=f"{result['plan']} (version {result['plan_version']}): building zones "
        "by emission if built"
    )
    lang: Lang = "nb"
    for i, column in enumerate(
        (
            t("cli.plan_col_zone", lang),
            t("cli.plan_col_formal", lang),
            t("col.daa", lang),
            t("cli.plan_col_rich", lang),
            "t CO2e",
        )
    ):
        table.add_column(column, justify="left" if i == 1 else "right")
    for fid in result["ranking_by_emission"]:
        z = zones[fid]
        table.add_row(
            str(fid),
            f"{z['arealformal']} {z['arealformal_name']}",
            number(z["area_daa"], 1, lang),
            number(z["flags"]["carbon_rich_daa"], 1, lang),
            number(z["emission_t_co2e"].get("central", 0), 0, lang),
        )
    console.print(table)
    console.print(t("cli.plan_total", lang, total=number(result["total_emission_t_co2e"], 0, lang)))
    if result["rezoning"]["zones"]:
        console.print(
            t(
                "cli.plan_avoided",
                lang,
                zones=", ".join(str(z) for z in result["rezoning"]["zones"]),
                avoided=number(result["rezoning"]["emission_avoided_t_co2e"], 0, lang),
            )
        )
