"""Flat tables of an assessment result: one row per footprint and land class (for CSV).

Plain numbers (a point as decimal mark, no thousands separator) so that spreadsheets and
scripts read them; units and the period are in the column names; every row carries the full
citation of the sources its factor rests on.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from core.bibliography import citations

COLUMNS = (
    "footprint",
    "arealtype",
    "arealtype_name",
    "skogbonitet",
    "grunnforhold",
    "peat_depth_class",
    "lucode",
    "factor_status",
    "area_m2",
    "area_daa",
    "area_ha",
    "stock_t_c_low",
    "stock_t_c_central",
    "stock_t_c_high",
    "emission_t_co2e_low",
    "emission_t_co2e_central",
    "emission_t_co2e_high",
    "emission_immediate_t_co2",
    "emission_over_horizon_t_co2e",
    "horizon_years",
    "co2_t",
    "ch4_t",
    "n2o_t",
    "preserved_unbuilt_t_c_central",
    "preset",
    "factor_table",
    "factor_source",
    "factor_citations",
)


def class_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every land class of every footprint, with the factor that valued it."""
    rows = []
    prov = result.get("provenance") or {}
    preset = prov.get("preset") or {}
    table = prov.get("factor_table") or {}
    for fp in result["footprints"]:
        for c in fp["classes"]:
            factor = c.get("factor") or {}
            stock = (c.get("stock_t_c") or {}).get("total", {})
            emission = c.get("emission_t_co2e") or {}
            gases = c.get("emission_gases") or {}
            rows.append(
                {
                    "footprint": fp["name"],
                    "arealtype": c["arealtype"],
                    "arealtype_name": c.get("arealtype_name"),
                    "skogbonitet": c.get("skogbonitet"),
                    "grunnforhold": c.get("grunnforhold"),
                    "peat_depth_class": c.get("peat_depth_class"),
                    "lucode": factor.get("lucode"),
                    "factor_status": factor.get("status"),
                    "area_m2": c["area_m2"],
                    "area_daa": c["area_daa"],
                    "area_ha": c["area_ha"],
                    "stock_t_c_low": stock.get("low"),
                    "stock_t_c_central": stock.get("central"),
                    "stock_t_c_high": stock.get("high"),
                    "emission_t_co2e_low": emission.get("low"),
                    "emission_t_co2e_central": emission.get("central"),
                    "emission_t_co2e_high": emission.get("high"),
                    "emission_immediate_t_co2": c.get("emission_immediate_t_co2"),
                    "emission_over_horizon_t_co2e": c.get("emission_over_time_t_co2e"),
                    "horizon_years": fp.get("horizon_years"),
                    "co2_t": gases.get("co2_t"),
                    "ch4_t": gases.get("ch4_t"),
                    "n2o_t": gases.get("n2o_t"),
                    "preserved_unbuilt_t_c_central": (c.get("preserved_unbuilt_t_c") or {}).get(
                        "central"
                    ),
                    "preset": f"{preset.get('name')} v{preset.get('version')}",
                    "factor_table": f"{table.get('name')} v{table.get('version')}",
                    "factor_source": factor.get("source"),
                    "factor_citations": " | ".join(
                        e["citation"] for e in citations(factor.get("source"))
                    ),
                }
            )
    return rows


def to_csv(result: dict[str, Any]) -> str:
    """The class table as CSV text (comma-separated, header row, UTF-8)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(class_rows(result))
    return buffer.getvalue()
