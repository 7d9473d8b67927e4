"""Printable report of an assessment for a case file (saksframlegg) or an impact assessment.

Bokmål by default, English with ``lang="en"`` (texts from :mod:`core.i18n`); numbers the way a
Norwegian reads them; case fields the planner fills in; every footprint under its own name;
a unit and a period on every column; a map with scale bar, north arrow and legend; the
method, preset, factor table, layer versions and full citations. Self-contained: inline CSS,
an SVG map, no scripts and nothing fetched, so it prints, archives and converts to PDF
(:mod:`maps.pdf`) as it is. Every value taken from data is HTML-escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from sqlalchemy import Engine

from analyses.assessment import load_proposal
from analyses.gases import gwp100
from core.i18n import DEFAULT_LANG, Lang, footprint_label, number, percent, t
from maps.svg import footprint_map, legend

CSS = """
@page{size:A4;margin:18mm 16mm}
body{font-family:"DejaVu Sans",system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222;
line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.flag{color:#b00;font-weight:bold}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em 1.2em;font-size:.9em}
.swatch{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle;
border:1px solid #999}.muted{color:#666;font-size:.9em}
table.case td{width:25%}table.case td.blank{height:1.4em}
svg{max-width:100%;height:auto}
@media print{body{margin:0}h2{page-break-after:avoid}table{page-break-inside:avoid}
.screen-only{display:none}}
"""
CASE_FIELDS = ("saksnummer", "saksbehandler", "dato", "plan_id")


@dataclass(frozen=True)
class CaseFields:
    """What the planner writes on the report for the case file; blank lines where not given."""

    saksnummer: str | None = None
    saksbehandler: str | None = None
    dato: str | None = None
    plan_id: str | None = None


def _range(values: dict[str, float], lang: Lang, digits: int = 0) -> str:
    return (
        f"{number(values.get('central'), digits, lang)} "
        f'<span class="muted">({number(values.get("low"), digits, lang)}–'
        f"{number(values.get('high'), digits, lang)})</span>"
    )


def _feature_label(item: dict[str, Any]) -> str:
    attrs = item["attrs"]
    return str(
        attrs.get("naturtype") or attrs.get("navn") or attrs.get("naturbase_id") or item["fid"]
    )


def _quality(item: dict[str, Any]) -> str:
    attrs = item["attrs"]
    return str(
        attrs.get("lokalitetskvalitet") or attrs.get("verdi") or attrs.get("verneform") or "–"
    )


def _horizon(years: int | None, lang: Lang) -> str:
    return t("horizon.years", lang, years=years) if years else t("horizon.none", lang)


def _class_name(c: dict[str, Any], lang: Lang) -> str:
    name = c.get("arealtype_name") or t("class.no_data", lang)
    if c.get("peat_depth_class"):
        name += f" ({t('peat.' + c['peat_depth_class'], lang)})"
    if c.get("skogbonitet") in (11, 12, 13, 14, 15):
        name += ", " + t("class.bonitet", lang, code=c["skogbonitet"])
    return f"{c['arealtype']} {name}"


def _gases(fp: dict[str, Any], lang: Lang) -> str:
    gases = fp.get("emission_gases") or {}
    rows = "".join(
        f"<tr><td>{gas}</td><td class=n>{number(gases.get(key), 2, lang)}</td>"
        f"<td class=n>{number(gases.get(co2e_key), 1, lang)}</td></tr>"
        for gas, key, co2e_key in (
            ("CO2", "co2_t", "co2_t"),
            ("CH4", "ch4_t", "ch4_t_co2e"),
            ("N2O", "n2o_t", "n2o_t_co2e"),
        )
    )
    return (
        f"<h3>{t('gases.title', lang)}</h3><table><tr><th>{t('col.gas', lang)}</th>"
        f"<th>{t('col.tonnes_gas', lang)}</th><th>{t('col.t_co2e', lang)}</th></tr>{rows}"
        f"<tr><td><b>{t('gas.total', lang)}</b></td><td></td>"
        f"<td class=n><b>{number(gases.get('total_t_co2e'), 1, lang)}</b></td></tr></table>"
    )


def _footprint_section(fp: dict[str, Any], lang: Lang) -> str:
    flags = fp["flags"]
    horizon = _horizon(fp.get("horizon_years"), lang)
    flag_items = []
    if flags["over_2000_t_co2e"]:
        flag_items.append(t("flag.ku_emission", lang))
    if flags["over_5_daa_carbon_rich"]:
        flag_items.append(t("flag.ku_area", lang, daa=number(flags["carbon_rich_daa"], 1, lang)))
    rows = []
    for c in fp["classes"]:
        factor = c.get("factor") or {}
        status = factor.get("status")
        rows.append(
            "<tr>"
            f"<td>{escape(_class_name(c, lang))}</td>"
            f"<td class=n>{number(c['area_daa'], 2, lang)}</td>"
            f"<td class=n>{_range((c.get('stock_t_c') or {}).get('total', {}), lang)}</td>"
            f"<td class=n>{_range(c.get('emission_t_co2e') or {}, lang)}</td>"
            f"<td>{escape(str(factor.get('lucode', '–')))} "
            f"{escape(t('status.' + status, lang) if status else '')}</td>"
            "</tr>"
        )
    nature = "".join(
        f"<tr><td>{escape(str(n['layer']))}</td><td>{escape(_feature_label(n))}</td>"
        f"<td>{escape(_quality(n))}</td><td class=n>{number(n['area_m2'], 0, lang)}</td></tr>"
        for n in flags["nature_types"] + flags["protected_areas"]
    )
    raster = fp.get("carbon_raster")
    notes = []
    if raster:
        notes.append(
            t(
                "raster.note",
                lang,
                name=escape(raster["name"]),
                version=raster["version"],
                share=percent(raster["covered_share"], 1, lang),
                pools=escape(", ".join(raster["pools"])),
                raster=number(raster["raster_t_c"], 1, lang),
                replaced=number(raster["replaced_class_t_c"], 1, lang),
            )
        )
    depth = fp.get("peat_depth")
    if depth:
        notes.append(
            t(
                "peat.note",
                lang,
                depth=number(depth["mean_m"], 2, lang),
                method=escape(depth["method"]),
                source=escape(depth["source"]),
                density=number(depth["density_kg_c_m3"], 1, lang),
            )
        )
    return (
        f"<h2>{escape(footprint_label(fp['name'], lang))}</h2>"
        + "<p>"
        + t(
            "fp.summary",
            lang,
            daa=number(fp["area_daa"], 1, lang),
            m2=number(fp["area_m2"], 0, lang),
            share=percent(fp["built_share"], 0, lang),
            nodata=percent(fp["no_land_cover_share"], 1, lang),
        )
        + "</p>"
        f"<table><tr><th>{t('col.stock', lang)}</th>"
        f"<th>{t('col.emission', lang, horizon=horizon)}</th>"
        f"<th>{t('col.immediate', lang)}</th>"
        f"<th>{t('col.over_time', lang, horizon=horizon)}</th>"
        f"<th>{t('col.preserved', lang)}</th>"
        f"<th>{t('col.forgone', lang, horizon=_horizon(fp.get('horizon_years') or 20, lang))}"
        "</th></tr>"
        f"<tr><td class=n>{_range(fp['stock_t_c'], lang)}</td>"
        f"<td class=n>{_range(fp['emission_t_co2e'], lang)}</td>"
        f"<td class=n>{number(fp['emission_immediate_t_co2'], 0, lang)}</td>"
        f"<td class=n>{number(fp['emission_over_time_t_co2e'], 0, lang)}</td>"
        f"<td class=n>{_range(fp['preserved_unbuilt_t_c'], lang)}</td>"
        f"<td class=n>{number(fp['forgone_sequestration_t_co2'], 0, lang)}</td></tr></table>"
        f"<p class=muted>{t('report.range_note', lang)}</p>"
        + "".join(f'<p class="flag">{escape(f)}</p>' for f in flag_items)
        + "".join(f"<p class=muted>{n}</p>" for n in notes)
        + _gases(fp, lang)
        + f"<table><tr><th>{t('col.class', lang)}</th><th>{t('col.daa', lang)}</th>"
        f"<th>{t('col.stock', lang)}</th><th>{t('col.emission', lang, horizon=horizon)}</th>"
        f"<th>{t('col.factor', lang)}</th></tr>"
        + "".join(rows)
        + "</table>"
        + (
            f"<h3>{t('nature.title', lang)}</h3><table><tr><th>{t('col.layer', lang)}</th>"
            f"<th>{t('col.feature', lang)}</th><th>{t('col.quality', lang)}</th>"
            f"<th>{t('col.area_m2', lang)}</th></tr>{nature}</table>"
            if nature
            else f"<p class=muted>{t('nature.none', lang)}</p>"
        )
    )


def case_table(case: CaseFields, lang: Lang) -> str:
    """The case fields, with blank lines to write on where none was given."""
    cells = []
    for name in CASE_FIELDS:
        value = getattr(case, name)
        cells.append(
            f"<tr><th>{t('case.' + name, lang)}</th>"
            + (f"<td>{escape(value)}</td>" if value else '<td class="blank"></td>')
            + "</tr>"
        )
    return f"<h2>{t('report.case', lang)}</h2><table class=case>{''.join(cells)}</table>"


def _method(result: dict[str, Any], lang: Lang) -> str:
    prov = result["provenance"]
    preset = prov["preset"]
    table = prov["factor_table"]
    gwp = gwp100()
    layers = "".join(
        "<li>"
        + t(
            "method.layer",
            lang,
            name=escape(str(lc["name"])),
            id=lc["layer_id"],
            version=lc["version"],
        )
        + "</li>"
        for lc in prov["land_cover_layers"]
    )
    return (
        f"<h2>{t('method.title', lang)}</h2><p>"
        + t(
            "method.preset",
            lang,
            name=escape(preset["name"]),
            version=preset["version"],
            title=escape(preset["title"]),
            source=escape(preset["source"]),
        )
        + "</p><p>"
        + t(
            "method.built",
            lang,
            share=percent(result["built_share"], 0, lang),
            source=escape(result["built_share_source"]),
        )
        + " "
        + t("method.peat", lang, share=percent(result.get("peat_excavated_share", 0), 0, lang))
        + "</p><p>"
        + t("method.ranges", lang, ch4=number(gwp["ch4"], 0, lang), n2o=number(gwp["n2o"], 0, lang))
        + "</p><p>"
        + t(
            "method.table",
            lang,
            name=escape(table["name"]),
            version=table["version"],
            sha=escape(table["sha256"][:16]),
        )
        + f"</p><ul>{layers}</ul>"
        + "".join(f"<p class=muted>{escape(n)}</p>" for n in prov.get("notes", []))
    )


def _sources(result: dict[str, Any], lang: Lang) -> str:
    factors: dict[int, dict[str, Any]] = {}
    for fp in result["footprints"]:
        for c in fp["classes"]:
            if c.get("factor"):
                factors[c["factor"]["lucode"]] = c["factor"]
    rows = "".join(
        f"<tr><td>{code}</td><td>{escape(f['name'])}</td>"
        f"<td>{escape(t('status.' + f['status'], lang))}</td><td>{escape(f['source'])}</td></tr>"
        for code, f in sorted(factors.items())
    )
    references = "".join(
        f"<li><b>[{escape(s['key'])}]</b> {escape(s['citation'])} <span class=muted>"
        + t("refs.used_for", lang, text=escape(s["used_for"]))
        + "</span></li>"
        for s in result["provenance"].get("sources", [])
    )
    return (
        f"<h2>{t('sources.title', lang)}</h2><table><tr><th>{t('col.lucode', lang)}</th>"
        f"<th>{t('col.class', lang)}</th><th>{t('col.status', lang)}</th>"
        f"<th>{t('col.source', lang)}</th></tr>{rows}</table>"
        f"<h2>{t('refs.title', lang)}</h2><ol class=refs>{references}</ol>"
    )


def proposal_report(
    engine: Engine,
    proposal_id: int,
    *,
    storage_srid: int,
    lang: Lang = DEFAULT_LANG,
    case: CaseFields | None = None,
    background: bool = True,
    pdf_href: str | None = None,
) -> str:
    """The whole report as one HTML document."""
    case = case or CaseFields()
    with engine.connect() as conn:
        stored = load_proposal(conn, proposal_id)
        result = stored.result
        footprints = stored.footprints(conn, storage_srid)
        lc_version = result["provenance"]["land_cover_layers"][0]["version_id"]
        svg, drawn = footprint_map(
            conn,
            [(footprint_label(n, lang), w) for n, w in footprints],
            lc_version if background else None,
            storage_srid,
            north=t("map.north", lang),
            aria_label=t("map.aria", lang),
        )
    names = [footprint_label(n, lang) for n, _ in footprints]
    comparison = "".join(
        f"<tr><td>{escape(footprint_label(c['name'], lang))}</td>"
        f"<td class=n>{number(c['emission_t_co2e'], 0, lang)}</td>"
        f"<td class=n>{number(c['more_than_least_t_co2e'], 0, lang)}</td></tr>"
        for c in result["comparison"]
    )
    horizon = _horizon(result["footprints"][0].get("horizon_years"), lang)
    title = escape(result.get("name") or footprint_label("proposal", lang))
    created = stored.created_at.strftime("%d.%m.%Y %H:%M" if lang == "nb" else "%Y-%m-%d %H:%M")
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{t('report.title', lang, name=title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{t('report.title', lang, name=title)}</h1>"
        "<p class=muted>"
        + t(
            "report.meta",
            lang,
            id=proposal_id,
            created=escape(created),
            code=escape(str(result["arealformal"])),
            name=escape(result["arealformal_name"]),
            software=escape(result["provenance"]["software"]),
        )
        + "</p>"
        + (
            f'<p class="screen-only"><a href="{escape(pdf_href)}">{t("report.pdf", lang)}</a></p>'
            if pdf_href
            else ""
        )
        + case_table(case, lang)
        + f"<h2>{t('report.map', lang)}</h2>"
        + svg
        + legend(drawn, names)
        + ("" if background else f"<p class=muted>{t('map.no_background', lang)}</p>")
        + (
            f"<h2>{t('report.alternatives', lang)}</h2><table><tr>"
            f"<th>{t('col.footprint', lang)}</th>"
            f"<th>{t('col.emission', lang, horizon=horizon)}</th>"
            f"<th>{t('col.more_than_least', lang)}</th></tr>{comparison}</table>"
            "<p>"
            + t(
                "report.least",
                lang,
                name=escape(footprint_label(result["least_carbon_loss"], lang)),
            )
            + "</p>"
            if len(result["comparison"]) > 1
            else ""
        )
        + "".join(_footprint_section(fp, lang) for fp in result["footprints"])
        + _method(result, lang)
        + _sources(result, lang)
        + "</body></html>"
    )
