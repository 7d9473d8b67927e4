"""The land account as an Excel workbook, one sheet per table of the account.

Planners take the account on in Excel (the guide's tables, Power BI after that), so the
workbook holds plain numbers with a number format, not text: the spreadsheet shows them the
Norwegian way on a Norwegian machine and sums them. Written by openpyxl.
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from analyses.land_account import QUALITIES
from core.i18n import Lang, t

DAA = "#,##0.0"
TONNES = "#,##0"


def _quality(key: str, lang: Lang) -> str:
    return t("la.col_daa", lang, quality=t(f"lq.{key}", lang))


def _sheet(book: Workbook, title: str, header: list[str], first: bool = False) -> Worksheet:
    sheet = book.active if first else book.create_sheet()
    assert sheet is not None
    sheet.title = title
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    return sheet


def _formats(sheet: Worksheet, start: int, fmt: str, end: int | None = None) -> None:
    for row in sheet.iter_rows(min_row=2, min_col=start, max_col=end or sheet.max_column):
        for cell in row:
            if isinstance(cell.value, int | float):
                cell.number_format = fmt


def _present(rows: list[dict[str, Any]], key: str) -> list[str]:
    seen = {k for r in rows for k in r.get(key, {})}
    return [q for q in QUALITIES if q in seen] if key == "land_daa" else sorted(seen)


def _status(book: Workbook, account: dict[str, Any], lang: Lang) -> None:
    rows = [*account["status"]["rows"], account["status"]["total"]]
    qualities, natures = _present(rows, "land_daa"), _present(rows, "nature_daa")
    header = [
        t("la.col_formal", lang),
        t("la.col_name", lang),
        t("la.col_zones", lang),
        t("la.col_area", lang),
        *(_quality(q, lang) for q in qualities),
        *(t("la.nature", lang, value=v) for v in natures),
        t("la.col_nature_unmapped", lang),
        t("la.col_protected", lang),
    ]
    sheet = _sheet(book, t("la.sheet_status", lang), header, first=True)
    for r in rows:
        sheet.append(
            [
                r["arealformal"] if r["arealformal"] is not None else "Sum",
                r["name"],
                r["zones"],
                r["area_daa"],
                *(r["land_daa"].get(q, 0.0) for q in qualities),
                *(r["nature_daa"].get(v, 0.0) for v in natures),
                r["nature_unmapped_daa"],
                r["protected_daa"],
            ]
        )
    _formats(sheet, 4, DAA)


def _reserve(book: Workbook, account: dict[str, Any], lang: Lang) -> None:
    zones = account["reserve"]["zones"]
    qualities = _present(zones, "land_daa")
    header = [
        t("la.col_fid", lang),
        t("la.col_name", lang),
        t("la.col_formal", lang),
        t("la.col_area", lang),
        t("la.col_built", lang),
        t("la.col_reserve", lang),
        *(_quality(q, lang) for q in qualities),
        t("la.col_stock", lang),
        t("la.col_emission", lang),
        t("la.col_emission_low", lang),
        t("la.col_emission_high", lang),
        t("la.col_sink", lang),
        t("la.col_rich", lang),
        t("la.col_dwellings", lang),
        t("la.col_per_dwelling", lang),
    ]
    sheet = _sheet(book, t("la.sheet_reserve", lang), header)
    for z in zones:
        emission = z["emission_t_co2e"]
        sheet.append(
            [
                z["fid"],
                z["name"],
                f"{z['arealformal']} {z['arealformal_name']}",
                z["area_daa"],
                z["built_daa"],
                z["reserve_daa"],
                *(z["land_daa"].get(q, 0.0) for q in qualities),
                z["stock_t_c"].get("central"),
                emission.get("central"),
                emission.get("low"),
                emission.get("high"),
                z["forgone_sequestration_t_co2"],
                z["carbon_rich_daa"],
                z.get("dwellings"),
                z.get("emission_per_dwelling_t_co2e"),
            ]
        )
    _formats(sheet, 4, DAA, 6 + len(qualities))
    _formats(sheet, 7 + len(qualities), TONNES)


def _change(book: Workbook, account: dict[str, Any], lang: Lang) -> None:
    change = account.get("change")
    header = [
        t("la.col_direction", lang),
        t("la.col_from", lang),
        t("la.col_to", lang),
        t("la.col_area", lang),
    ]
    pieces = [*(change or {}).get("into_building", []), *(change or {}).get("out_of_building", [])]
    qualities = _present(pieces, "land_daa")
    header += [*(_quality(q, lang) for q in qualities), t("la.col_emission", lang)]
    sheet = _sheet(book, t("la.sheet_change", lang), header)
    if not change:
        return
    for direction, key in (("la.into", "into_building"), ("la.out", "out_of_building")):
        for p in change[key]:
            sheet.append(
                [
                    t(direction, lang),
                    p["was_arealformal"],
                    p["arealformal"],
                    p["area_daa"],
                    *(p["land_daa"].get(q, 0.0) for q in qualities),
                    p["emission_t_co2e"].get("central"),
                ]
            )
    sheet.append(
        [
            t("la.net", lang),
            None,
            None,
            round(change["into_daa"] - change["out_daa"], 4),
            *(change["per_quality"].get(q, {}).get("net_daa", 0.0) for q in qualities),
            change["net_emission_t_co2e"],
        ]
    )
    _formats(sheet, 4, DAA, 4 + len(qualities))
    _formats(sheet, 5 + len(qualities), TONNES)


def _per_code(book: Workbook, account: dict[str, Any], lang: Lang) -> None:
    header = [
        t("la.col_formal", lang),
        t("la.col_name", lang),
        t("la.col_in_force", lang),
        t("la.col_proposed", lang),
        t("la.col_difference", lang),
    ]
    sheet = _sheet(book, t("la.sheet_per_code", lang), header)
    for r in (account.get("change") or {}).get("per_arealformal", []):
        sheet.append(
            [r["arealformal"], r["name"], r["in_force_daa"], r["proposed_daa"], r["difference_daa"]]
        )
    _formats(sheet, 3, DAA)


def _sources(book: Workbook, account: dict[str, Any], lang: Lang) -> None:
    header = [t("la.col_key", lang), t("la.col_reference", lang)]
    sheet = _sheet(book, t("la.sheet_sources", lang), header)
    prov = account["provenance"]
    for source in prov["sources"]:
        sheet.append([source["key"], source["citation"]])
    sheet.append([])
    sheet.append(
        [
            "",
            t(
                "la.provenance",
                lang,
                table=prov["factor_table"]["name"],
                version=prov["factor_table"]["version"],
                preset=prov["preset"]["name"],
                plan=prov["plan_layer"]["name"],
                plan_version=prov["plan_layer"]["version"],
            ),
        ]
    )
    sheet.column_dimensions["B"].width = 120


def land_account_workbook(account: dict[str, Any], lang: Lang = "nb") -> bytes:
    """The ``.xlsx`` bytes of a land account: Status, Arealreserve, Endringer, Endring per
    arealformål, Kilder."""
    book = Workbook()
    _status(book, account, lang)
    _reserve(book, account, lang)
    _change(book, account, lang)
    _per_code(book, account, lang)
    _sources(book, account, lang)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
