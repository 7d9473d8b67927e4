"""Every number the service ships rests on sources a reader can look up inside the project.

Shipped files name their sources by bibliography key (``[ipcc-2014-wetlands]``); a key that
does not resolve, or a reference to a document outside the repository (the team's domain
notes, codes such as ``K4``, tags such as ``[E]``), fails here.
"""

from __future__ import annotations

import csv
import io
import re
import tokenize
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.bibliography import bibliography, keys_in, unresolved
from tests.test_carbon import FOREST, MIRE, assess, landscape, utm  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("core", "layers", "analyses", "maps", "geoservice", "migrations")
OUTSIDE = re.compile(r"domain\.md|\[[EDS]\]|\[[EDS],|\bK\d{1,2}\b")


def _shipped_files() -> list[Path]:
    return [
        p
        for folder in SHIPPED
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".py", ".csv", ".md") and "node_modules" not in p.parts
    ]


def test_no_shipped_file_cites_a_document_outside_the_repository() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()[:80]}"
        for p in _shipped_files()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def _texts(path: Path) -> list[str]:
    """What may cite: a CSV file whole; a module's strings and comments (not type-checker
    comments such as ``# type: ignore[arg-type]``)."""
    source = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return [source]
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [
        t.string
        for t in tokens
        if t.type == tokenize.STRING
        or (t.type == tokenize.COMMENT and "type: ignore" not in t.string)
    ]


def test_every_key_resolves_and_every_entry_is_complete() -> None:
    entries = bibliography()
    for entry in entries.values():
        assert entry.author and entry.title and entry.year and entry.publisher, entry.key
        assert entry.used_for, entry.key
    missing = {
        f"{p.relative_to(ROOT)}: {key}"
        for p in _shipped_files()
        for text in _texts(p)
        for key in unresolved(text)
    }
    assert missing == set()
    project = entries["project-estimates"]
    assert (ROOT / project.url).is_file()  # the estimates are listed inside the project


@pytest.mark.parametrize(
    "table",
    [
        "analyses/factors/norway_default.csv",
        "analyses/factors/built_share.csv",
        "analyses/factors/organic_soil.csv",
        "analyses/targets.csv",
    ],
)
def test_every_row_names_a_source(table: str) -> None:
    with (ROOT / table).open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            assert keys_in(row["source"]), (table, row)


@pytest.mark.usefixtures("landscape")
def test_results_carry_full_citations(client: TestClient) -> None:
    result = assess(client, utm(MIRE), built_share=1.0)
    sources = {s["key"]: s for s in result["provenance"]["sources"]}
    assert {"asplanviak-svv-2015", "miljodir-m1941", "ipcc-2014-wetlands"} <= set(sources)
    wetlands = sources["ipcc-2014-wetlands"]
    assert "Wetlands" in wetlands["citation"] and wetlands["url"].startswith("https://")
    forest = assess(client, utm(FOREST), built_share=1.0)
    assert "skoghandboka-2024" in {s["key"] for s in forest["provenance"]["sources"]}


def test_a_row_is_no_surer_than_its_weakest_significant_part() -> None:
    """Forest rows: biomass is derived from sources, but soil (130) and dead organic matter
    (15 t C/ha) are estimates, 78 % of the row's carbon: the row is provisional."""
    with (ROOT / "analyses/factors/norway_default.csv").open(encoding="utf-8") as fh:
        rows = {r["lucode"]: r for r in csv.DictReader(fh)}
    for lucode in ("3000", "3013"):
        row = rows[lucode]
        estimated = float(row["c_soil"]) + float(row["c_dead"])
        total = sum(float(row[p]) for p in ("c_above", "c_below", "c_dead", "c_soil"))
        assert estimated / total > 0.5
        assert row["status"] == "provisional", lucode


def test_mire_ranges_are_depth_span_times_density_quartiles() -> None:
    """A mire row's range is its depth class's span (0.3–1 m shallow, 1–3 m deep, 0.3–3 m
    unknown) times the lower and upper quartile of the analysed NINA samples (25.2 and
    62.3 kg C/m³), over the row's central stock: not the 0.95–1.0 it used to be."""
    with (ROOT / "analyses/factors/norway_default.csv").open(encoding="utf-8") as fh:
        rows = {r["peat_depth_class"]: r for r in csv.DictReader(fh) if r["arealtype"] == "60"}
    spans = {"grunn": (0.3, 1.0), "djup": (1.0, 3.0), "ukjent": (0.3, 3.0)}
    for depth_class, (shallow, deep) in spans.items():
        row = rows[depth_class]
        central = float(row["c_soil"])
        assert float(row["low_factor"]) == pytest.approx(shallow * 252.1555 / central, abs=6e-4)
        assert float(row["high_factor"]) == pytest.approx(deep * 623.4325 / central, abs=6e-4)
        assert float(row["high_factor"]) > 1.5  # the high bound is no longer the central value
    from analyses.peat import depth_class_range

    for depth_class in spans:
        low, high = depth_class_range(depth_class, float(rows[depth_class]["c_soil"]))
        assert (round(low, 3), round(high, 3)) == (
            float(rows[depth_class]["low_factor"]),
            float(rows[depth_class]["high_factor"]),
        )


def test_gases_agree_with_the_tabulated_co2e_and_use_ar5_gwp() -> None:
    """N2O of drained boreal cropland and grassland (13 and 9.5 kg N2O-N/ha/yr) give the
    5.57 and 4.06 t CO2e/ha/yr the EU hotspot paper tabulates at its GWP of 273; our totals
    use the AR5 GWP100 (CH4 28, N2O 265) that Norway's inventory reports with."""
    from analyses.gases import drained_flux, gwp100, organic_soil_factors

    assert gwp100() == {"ch4": 28.0, "n2o": 265.0}
    assert drained_flux("cropland").n2o_t * 273 == pytest.approx(5.57, abs=0.01)
    assert drained_flux("grassland").n2o_t * 273 == pytest.approx(4.06, abs=0.02)
    table = organic_soil_factors()
    assert all(keys_in(r["source"]) for r in table.values())
    assert drained_flux("cropland").co2e() == pytest.approx(
        28.97 + 0.44 + 0.05 * 1165 / 1000 * 28 + 13 * 44 / 28 / 1000 * 265, rel=1e-9
    )
