"""Printable HTML report of an assessment, for a case document (saksframlegg) or a KU.

Self-contained: inline CSS, an SVG map, no scripts and nothing fetched, so it prints and
archives as it is. Every value taken from data is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from sqlalchemy import Engine

from analyses.assessment import load_proposal
from maps.svg import footprint_map, legend

CSS = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}.flag{color:#b00;font-weight:bold}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4em 1.2em;font-size:.9em}
.swatch{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle;
border:1px solid #999}.muted{color:#666;font-size:.9em}
@media print{body{margin:0}h2{page-break-after:avoid}table{page-break-inside:avoid}}
"""


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{float(value):,.{digits}f}".replace(",", "\u202f")


def _range(values: dict[str, float], digits: int = 0) -> str:
    return (
        f"{_n(values.get('central'), digits)} "
        f'<span class="muted">({_n(values.get("low"), digits)}–'
        f"{_n(values.get('high'), digits)})</span>"
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


def _footprint_section(fp: dict[str, Any]) -> str:
    flags = fp["flags"]
    flag_items = []
    if flags["over_2000_t_co2e"]:
        flag_items.append("Over 2 000 t CO2e: climate gas emissions are a KU topic (M-1941 §2.9).")
    if flags["over_5_daa_carbon_rich"]:
        flag_items.append(
            f"{_n(flags['carbon_rich_daa'], 1)} daa of carbon-rich land (myr, forest of high "
            "bonitet): more than 5 daa (M-1941 §2.9)."
        )
    rows = []
    for c in fp["classes"]:
        factor = c.get("factor") or {}
        name = c.get("arealtype_name") or "no data"
        if c.get("peat_depth_class"):
            name += f" ({c['peat_depth_class']})"
        if c.get("skogbonitet") in (11, 12, 13, 14, 15):
            name += f", bonitet {c['skogbonitet']}"
        rows.append(
            "<tr>"
            f"<td>{escape(str(c['arealtype']))} {escape(name)}</td>"
            f"<td class=n>{_n(c['area_daa'], 2)}</td>"
            f"<td class=n>{_range((c.get('stock_t_c') or {}).get('total', {}))}</td>"
            f"<td class=n>{_range(c.get('emission_t_co2e') or {})}</td>"
            f"<td>{escape(str(factor.get('lucode', '–')))} {escape(factor.get('status', ''))}</td>"
            "</tr>"
        )
    nature = "".join(
        f"<tr><td>{escape(str(n['layer']))}</td><td>{escape(_feature_label(n))}</td>"
        f"<td>{escape(_quality(n))}</td><td class=n>{_n(n['area_m2'])}</td></tr>"
        for n in flags["nature_types"] + flags["protected_areas"]
    )
    raster = fp.get("carbon_raster")
    raster_note = (
        f"<p class=muted>Carbon raster {escape(raster['name'])} (version {raster['version']}) "
        f"covers {_n(raster['covered_share'] * 100, 1)} % of the site and replaces the class "
        f"values of {escape(', '.join(raster['pools']))}: {_n(raster['raster_t_c'], 1)} t C "
        f"instead of {_n(raster['replaced_class_t_c'], 1)} t C.</p>"
        if raster
        else ""
    )
    return (
        f"<h2>{escape(fp['name'])}</h2>"
        f"<p>{_n(fp['area_daa'], 1)} daa ({_n(fp['area_m2'])} m²), built share "
        f"{_n(fp['built_share'] * 100)} %; {_n(fp['no_land_cover_share'] * 100, 1)} % without "
        "land-cover data.</p>"
        "<table><tr><th>Carbon stock</th><th>Emission if built</th><th>At once</th>"
        "<th>Over time</th><th>Preserved (unbuilt part)</th><th>Forgone sequestration</th></tr>"
        f"<tr><td class=n>{_range(fp['stock_t_c'])} t C</td>"
        f"<td class=n>{_range(fp['emission_t_co2e'])} t CO2e</td>"
        f"<td class=n>{_n(fp['emission_immediate_t_co2'])}</td>"
        f"<td class=n>{_n(fp['emission_over_time_t_co2e'])}</td>"
        f"<td class=n>{_range(fp['preserved_unbuilt_t_c'])} t C</td>"
        f"<td class=n>{_n(fp['forgone_sequestration_t_co2'])} t CO2</td></tr></table>"
        + "".join(f'<p class="flag">{escape(f)}</p>' for f in flag_items)
        + raster_note
        + "<table><tr><th>Land class</th><th>daa</th><th>Stock t C</th>"
        "<th>Emission t CO2e</th><th>Factor</th></tr>"
        + "".join(rows)
        + "</table>"
        + (
            "<h3>Nature types and protected areas touched</h3><table><tr><th>Layer</th>"
            "<th>Feature</th><th>Quality / value</th><th>m²</th></tr>" + nature + "</table>"
            if nature
            else "<p class=muted>No mapped nature types or protected areas are touched.</p>"
        )
    )


def proposal_report(engine: Engine, proposal_id: int, *, storage_srid: int) -> str:
    """The whole report as one HTML document."""
    with engine.connect() as conn:
        stored = load_proposal(conn, proposal_id)
        result = stored.result
        footprints = stored.footprints(conn, storage_srid)
        lc_version = result["provenance"]["land_cover_layers"][0]["version_id"]
        svg, drawn = footprint_map(conn, footprints, lc_version, storage_srid)
    prov = result["provenance"]
    preset = prov["preset"]
    table = prov["factor_table"]
    factors: dict[int, dict[str, Any]] = {}
    for fp in result["footprints"]:
        for c in fp["classes"]:
            if c.get("factor"):
                factors[c["factor"]["lucode"]] = c["factor"]
    sources = "".join(
        f"<tr><td>{code}</td><td>{escape(f['name'])}</td><td>{escape(f['status'])}</td>"
        f"<td>{escape(f['source'])}</td></tr>"
        for code, f in sorted(factors.items())
    )
    comparison = "".join(
        f"<tr><td>{escape(c['name'])}</td><td class=n>{_n(c['emission_t_co2e'])}</td>"
        f"<td class=n>{_n(c['more_than_least_t_co2e'])}</td></tr>"
        for c in result["comparison"]
    )
    layers = "".join(
        f"<li>Land cover: {escape(str(lc['name']))} (layer {lc['layer_id']}, version "
        f"{lc['version']})</li>"
        for lc in prov["land_cover_layers"]
    )
    title = escape(result.get("name") or f"Proposal {proposal_id}")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Carbon assessment – {title}</title><style>{CSS}</style></head><body>"
        f"<h1>Carbon assessment: {title}</h1>"
        f"<p class=muted>Assessment {proposal_id}, "
        f"{escape(stored.created_at.strftime('%Y-%m-%d %H:%M'))} UTC · planned arealformål "
        f"{escape(str(result['arealformal']))} "
        f"{escape(result['arealformal_name'])} · {escape(prov['software'])}</p>"
        "<h2>Map</h2>"
        + svg
        + legend(drawn, [n for n, _ in footprints])
        + (
            "<h2>Alternatives</h2><table><tr><th>Footprint</th><th>Emission t CO2e</th>"
            f"<th>More than the least</th></tr>{comparison}</table>"
            f"<p>Least carbon lost: <b>{escape(result['least_carbon_loss'])}</b>.</p>"
            if len(result["comparison"]) > 1
            else ""
        )
        + "".join(_footprint_section(fp) for fp in result["footprints"])
        + "<h2>Method</h2>"
        f"<p>Preset <b>{escape(preset['name'])}</b> (version {preset['version']}): "
        f"{escape(preset['title'])}. {escape(preset['source'])}.</p>"
        f"<p>Built share {_n(result['built_share'] * 100)} % – "
        f"{escape(result['built_share_source'])}. Peat handling: "
        f"{escape(result['peat_handling'])}. Ranges (low–high) follow each factor row's "
        "uncertainty. 1 t C = 44/12 t CO2.</p>"
        f"<p>Factor table <b>{escape(table['name'])}</b> version {table['version']} "
        f"(SHA-256 {escape(table['sha256'][:16])}…).</p><ul>{layers}</ul>"
        + "".join(f"<p class=muted>{escape(n)}</p>" for n in prov.get("notes", []))
        + "<h2>Sources of the factors used</h2><table><tr><th>lucode</th><th>Class</th>"
        f"<th>Status</th><th>Source</th></tr>{sources}</table>"
        + "<h2>References</h2><ol class=refs>"
        + "".join(
            f"<li><b>[{escape(s['key'])}]</b> {escape(s['citation'])}"
            f" <span class=muted>Used for: {escape(s['used_for'])}</span></li>"
            for s in prov.get("sources", [])
        )
        + "</ol></body></html>"
    )
