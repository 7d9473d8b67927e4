"""The land account as a printable report (HTML; PDF by :mod:`maps.pdf`): case details, the
status, the reserve ranked by carbon at stake, the change between the plans, method and
references. Bokmål by default; numbers the Norwegian way."""

from __future__ import annotations

from html import escape
from typing import Any

from core.i18n import DEFAULT_LANG, Lang, number, t
from maps.report import CSS, CaseFields, case_table

MAX_RESERVE_ROWS = 200  # the workbook has them all


def _quality(key: str, lang: Lang) -> str:
    return escape(t(f"lq.{key}", lang))


def _land(values: dict[str, float], lang: Lang) -> str:
    return ", ".join(f"{_quality(q, lang)} {number(v, 1, lang)}" for q, v in values.items())


def _nature(values: dict[str, float], lang: Lang) -> str:
    return escape(", ".join(f"{k} {number(v, 1, lang)}" for k, v in values.items()))


def _status(account: dict[str, Any], lang: Lang) -> str:
    rows = [*account["status"]["rows"], account["status"]["total"]]
    body = "".join(
        f"<tr><td>{r['arealformal'] or ''}</td><td>{escape(r['name'])}</td>"
        f"<td class=n>{r['zones']}</td><td class=n>{number(r['area_daa'], 1, lang)}</td>"
        f"<td>{_land(r['land_daa'], lang)}</td>"
        f"<td>{_nature(r['nature_daa'], lang)}</td>"
        f"<td class=n>{number(r['nature_unmapped_daa'], 1, lang)}</td>"
        f"<td class=n>{number(r['protected_daa'], 1, lang)}</td></tr>"
        for r in rows
    )
    return (
        f"<h2>{t('la.sheet_status', lang)}</h2><table><tr>"
        f"<th>{t('la.col_formal', lang)}</th><th>{t('la.col_name', lang)}</th>"
        f"<th>{t('la.col_zones', lang)}</th><th>{t('la.col_area', lang)}</th>"
        f"<th>{t('report.la_land', lang)}</th><th>{t('report.la_nature', lang)}</th>"
        f"<th>{t('la.col_nature_unmapped', lang)}</th><th>{t('la.col_protected', lang)}</th>"
        f"</tr>{body}</table>"
    )


def _reserve(account: dict[str, Any], lang: Lang) -> str:
    zones = account["reserve"]["zones"][:MAX_RESERVE_ROWS]
    body = "".join(
        f"<tr><td>{escape(str(z['name'] or z['fid']))}</td>"
        f"<td>{z['arealformal']} {escape(z['arealformal_name'])}</td>"
        f"<td class=n>{number(z['reserve_daa'], 1, lang)}</td>"
        f"<td>{_land(z['land_daa'], lang)}</td>"
        f"<td class=n>{number(z['emission_t_co2e'].get('central', 0), 0, lang)}</td>"
        f"<td class=n>{number(z['carbon_rich_daa'], 1, lang)}</td>"
        f"<td class=n>{number(z.get('dwellings'), 0, lang)}</td></tr>"
        for z in zones
    )
    total = account["reserve"]["total"]
    return (
        f"<h2>{t('la.sheet_reserve', lang)}</h2><p>"
        + t(
            "report.la_reserve",
            lang,
            zones=total["zones"],
            daa=number(total["reserve_daa"], 1, lang),
            t=number(total["emission_t_co2e"], 0, lang),
        )
        + f"</p><table><tr><th>{t('la.col_name', lang)}</th><th>{t('la.col_formal', lang)}</th>"
        f"<th>{t('la.col_reserve', lang)}</th><th>{t('report.la_land', lang)}</th>"
        f"<th>{t('la.col_emission', lang)}</th><th>{t('la.col_rich', lang)}</th>"
        f"<th>{t('la.col_dwellings', lang)}</th></tr>{body}</table>"
    )


def _change(account: dict[str, Any], lang: Lang) -> str:
    change = account.get("change")
    if not change:
        return ""
    rows = []
    for direction, key in (("la.into", "into_building"), ("la.out", "out_of_building")):
        for p in change[key]:
            rows.append(
                f"<tr><td>{t(direction, lang)}</td><td>{p['was_arealformal'] or '–'}</td>"
                f"<td>{p['arealformal'] or '–'}</td>"
                f"<td class=n>{number(p['area_daa'], 1, lang)}</td>"
                f"<td>{_land(p['land_daa'], lang)}</td>"
                f"<td class=n>{number(p['emission_t_co2e'].get('central', 0), 0, lang)}</td></tr>"
            )
    return (
        f"<h2>{t('la.sheet_change', lang)}</h2><p>"
        + t(
            "report.la_change",
            lang,
            old=escape(str(change["from_plan"]["name"])),
            into=number(change["into_daa"], 1, lang),
            out=number(change["out_daa"], 1, lang),
            net=number(change["net_emission_t_co2e"], 0, lang),
        )
        + f"</p><table><tr><th>{t('la.col_direction', lang)}</th><th>{t('la.col_from', lang)}</th>"
        f"<th>{t('la.col_to', lang)}</th><th>{t('la.col_area', lang)}</th>"
        f"<th>{t('report.la_land', lang)}</th><th>{t('la.col_emission', lang)}</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _method(account: dict[str, Any], lang: Lang) -> str:
    prov = account["provenance"]
    references = "".join(
        f"<li><b>[{escape(s['key'])}]</b> {escape(s['citation'])}</li>" for s in prov["sources"]
    )
    return (
        f"<h2>{t('method.title', lang)}</h2><p>"
        + t(
            "la.provenance",
            lang,
            table=escape(prov["factor_table"]["name"]),
            version=prov["factor_table"]["version"],
            preset=escape(prov["preset"]["name"]),
            plan=escape(prov["plan_layer"]["name"]),
            plan_version=prov["plan_layer"]["version"],
        )
        + f"</p><p>{t('report.la_method', lang)}</p>"
        f"<h2>{t('refs.title', lang)}</h2><ol class=refs>{references}</ol>"
    )


def land_account_report(
    account: dict[str, Any],
    *,
    lang: Lang = DEFAULT_LANG,
    case: CaseFields | None = None,
    pdf_href: str | None = None,
) -> str:
    """The whole report as one HTML document."""
    title = t("report.la_title", lang, name=escape(str(account["plan"]["name"])))
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{CSS}</style></head><body><h1>{title}</h1>"
        + (
            f'<p class="screen-only"><a href="{escape(pdf_href)}">{t("report.pdf", lang)}</a></p>'
            if pdf_href
            else ""
        )
        + case_table(case or CaseFields(), lang)
        + _status(account, lang)
        + _reserve(account, lang)
        + _change(account, lang)
        + _method(account, lang)
        + "</body></html>"
    )
