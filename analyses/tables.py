"""Flat tables of an assessment result: one row per footprint and land class (for CSV)."""

from __future__ import annotations

import csv
import io
from typing import Any

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
    "emission_t_co2_low",
    "emission_t_co2_central",
    "emission_t_co2_high",
    "emission_immediate_t_co2",
    "emission_over_time_t_co2",
    "preserved_unbuilt_t_c_central",
    "factor_source",
)


def class_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every land class of every footprint, with the factor that valued it."""
    rows = []
    for fp in result["footprints"]:
        for c in fp["classes"]:
            factor = c.get("factor") or {}
            stock = (c.get("stock_t_c") or {}).get("total", {})
            emission = c.get("emission_t_co2") or {}
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
                    "emission_t_co2_low": emission.get("low"),
                    "emission_t_co2_central": emission.get("central"),
                    "emission_t_co2_high": emission.get("high"),
                    "emission_immediate_t_co2": c.get("emission_immediate_t_co2"),
                    "emission_over_time_t_co2": c.get("emission_over_time_t_co2"),
                    "preserved_unbuilt_t_c_central": (c.get("preserved_unbuilt_t_c") or {}).get(
                        "central"
                    ),
                    "factor_source": factor.get("source"),
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
