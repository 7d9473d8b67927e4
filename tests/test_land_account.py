"""Arealregnskap: status, arealreserve and the change between two plans, on hand-built plans
and land cover where every cell of every table is known; the workbook and the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import openpyxl
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from shapely.geometry import box
from typer.testing import CliRunner

from geoservice.settings import Settings
from tests.test_carbon import (  # noqa: F401
    CO2,
    FOREST,
    MIRE,
    X0,
    Y0,
    assess,
    landscape,
    utm,
)
from tests.test_layers import upload

# Plan in force: housing on the forest, business on built land + field + unmapped land, LNFR
# on the whole mire. Proposed plan: the forest back to LNFR, the business zone unchanged,
# housing on the western 10 ha of the mire, LNFR on the rest.
BUSINESS = box(X0 + 200, Y0, X0 + 500, Y0 + 100)  # 3 ha: built, unmapped, field
MIRE_WEST = box(X0, Y0 + 1000, X0 + 1000, Y0 + 1100)  # 10 ha
MIRE_EAST = box(X0 + 1000, Y0 + 1000, X0 + 2237, Y0 + 1100)  # 12.37 ha
NATURE = box(X0, Y0 + 1000, X0 + 100, Y0 + 1100)  # 1 ha of value A inside the western mire


def plan_layer(client: TestClient, tmp_path: Path, name: str, zones: list[Any]) -> int:
    frame = gpd.GeoDataFrame(
        {
            "KPAREALFORMÅL": [code for code, _, _ in zones],
            "OMRÅDENAVN": [label for _, label, _ in zones],
            "KOMM": "3218",
        },
        geometry=[shape for _, _, shape in zones],
        crs=25833,
    )
    path = tmp_path / f"{name}.gpkg"
    frame.to_file(path)
    response = upload(client, path, kind="land_use_plan", name=name)
    assert response.status_code == 201, response.text
    return int(response.json()["layer_id"])


@pytest.fixture
def plans(client: TestClient, landscape: None, tmp_path: Path) -> tuple[int, int]:  # noqa: F811
    nature = gpd.GeoDataFrame(
        {"naturtype": ["Intakt høgmyr"], "bmverdi": ["A"]}, geometry=[NATURE], crs=25833
    )
    nature.to_file(tmp_path / "nature.gpkg")
    made = upload(client, tmp_path / "nature.gpkg", kind="nature_types", name="Naturtyper")
    assert made.status_code == 201, made.text
    in_force = plan_layer(
        client,
        tmp_path,
        "KPA 2015",
        [(1110, "B1", FOREST), (1300, "N1", BUSINESS), (5100, "L1", MIRE)],
    )
    proposed = plan_layer(
        client,
        tmp_path,
        "KPA 2027",
        [
            (5100, "L1", FOREST),
            (1300, "N1", BUSINESS),
            (1110, "B2", MIRE_WEST),
            (5100, "L2", MIRE_EAST),
        ],
    )
    return in_force, proposed


def account(client: TestClient, layer_id: int, **body: Any) -> dict[str, Any]:
    queued = client.post(f"/api/plans/{layer_id}/land-account", json=body)
    assert queued.status_code == 202, queued.text
    job = client.get(queued.json()["href"]).json()
    assert job["status"] == "done", job
    assert job["progress"] == 1
    return dict(job["result"])


def test_status_per_arealformal_and_land_quality(
    client: TestClient, plans: tuple[int, int]
) -> None:
    result = account(client, plans[1])
    rows = {r["arealformal"]: r for r in result["status"]["rows"]}
    assert set(rows) == {1110, 1300, 5100}
    housing, business, lnfr = rows[1110], rows[1300], rows[5100]
    assert housing["zones"] == 1 and housing["area_daa"] == pytest.approx(100)
    assert housing["land_daa"] == {"myr": pytest.approx(100)}
    assert housing["nature_daa"] == {"DN13 A": pytest.approx(10)}
    # nature types were looked for only where the nature layer lies: 90 daa not mapped
    assert housing["nature_unmapped_daa"] == pytest.approx(90)
    assert business["land_daa"] == {
        "bebygd": pytest.approx(10),
        "fulldyrka": pytest.approx(10),
        "uten_arealdekke": pytest.approx(10),
    }
    assert business["nature_daa"] == {} and business["nature_unmapped_daa"] == pytest.approx(30)
    assert lnfr["zones"] == 2 and lnfr["area_daa"] == pytest.approx(133.7)
    assert lnfr["land_daa"] == {"myr": pytest.approx(123.7), "skog_hoy": pytest.approx(10)}
    total = result["status"]["total"]
    assert total["area_daa"] == pytest.approx(263.7)
    assert total["land_daa"]["myr"] == pytest.approx(223.7)
    assert result["provenance"]["method"] == "[kdd-2023-arealregnskap]"
    assert any(s["key"] == "kdd-2023-arealregnskap" for s in result["provenance"]["sources"])


def test_reserve_is_unbuilt_building_land_valued_like_a_proposal(
    client: TestClient, plans: tuple[int, int]
) -> None:
    result = account(client, plans[1], dwellings_per_daa={"1110": 2.0})
    reserve = result["reserve"]
    by_name = {z["name"]: z for z in reserve["zones"]}
    assert set(by_name) == {"N1", "B2"}
    business, housing = by_name["N1"], by_name["B2"]
    assert business["built_daa"] == pytest.approx(10)
    assert business["reserve_daa"] == pytest.approx(20)
    assert business["land_daa"] == {
        "fulldyrka": pytest.approx(10),
        "uten_arealdekke": pytest.approx(10),
    }
    assert housing["reserve_daa"] == pytest.approx(100)
    assert housing["carbon_rich_daa"] == pytest.approx(100)
    # ranked by the carbon at stake: the mire first
    assert [z["name"] for z in reserve["zones"]] == ["B2", "N1"]
    assert housing["dwellings"] == pytest.approx(200)
    assert housing["emission_per_dwelling_t_co2e"] == pytest.approx(
        housing["emission_t_co2e"]["central"] / 200, abs=0.01
    )
    # the same polygon as a proposal gives the same tonnes
    [same] = assess(client, utm(MIRE_WEST))["footprints"]
    assert housing["emission_t_co2e"] == same["emission_t_co2e"]
    assert housing["stock_t_c"] == same["stock_t_c"]
    assert reserve["total"]["reserve_daa"] == pytest.approx(120)
    assert reserve["total"]["dwellings"] == pytest.approx(200)


def test_change_between_the_plan_in_force_and_the_proposal(
    client: TestClient, plans: tuple[int, int]
) -> None:
    in_force, proposed = plans
    result = account(client, proposed, compare_layer_id=in_force)
    change = result["change"]
    [into] = change["into_building"]
    assert into["arealformal"] == 1110 and into["was_arealformal"] == 5100
    assert into["area_daa"] == pytest.approx(100)
    assert into["land_daa"] == {"myr": pytest.approx(100)}
    assert into["nature_daa"] == {"DN13 A": pytest.approx(10)}
    assert change["flagged"] == [into["fid"]]
    [out] = change["out_of_building"]
    assert out["was_arealformal"] == 1110 and out["arealformal"] == 5100
    assert out["returned_to"] == "lnfr"
    assert out["land_daa"] == {"skog_hoy": pytest.approx(10)}
    # the forest kept: a housing zone's 60 % of 157 t C/ha on 1 ha, as CO2
    assert out["emission_t_co2e"]["central"] == pytest.approx(0.6 * 157 * CO2, abs=0.02)
    assert change["per_quality"]["myr"] == {
        "into_daa": pytest.approx(100),
        "out_daa": 0,
        "net_daa": pytest.approx(100),
    }
    assert change["per_quality"]["skog_hoy"]["net_daa"] == pytest.approx(-10)
    assert change["returned_daa"] == {"lnfr": pytest.approx(10)}
    assert change["net_emission_t_co2e"] == pytest.approx(
        into["emission_t_co2e"]["central"] - out["emission_t_co2e"]["central"], abs=0.02
    )
    assert change["from_plan"]["layer_id"] == in_force
    assert result["provenance"]["compared_plan_layer"]["layer_id"] == in_force


def test_workbook_and_cli(
    client: TestClient, plans: tuple[int, int], tmp_path: Path, settings: Settings
) -> None:
    in_force, proposed = plans
    queued = client.post(
        f"/api/plans/{proposed}/land-account", json={"compare_layer_id": in_force}
    ).json()
    workbook = client.get(queued["href"] + "/arealregnskap.xlsx")
    assert workbook.status_code == 200, workbook.text
    path = tmp_path / "a.xlsx"
    path.write_bytes(workbook.content)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [
        "Status",
        "Arealreserve",
        "Endringer",
        "Endring per arealformål",
        "Kilder",
    ]
    per_code = {
        row[0]: row[2:]
        for row in book["Endring per arealformål"].iter_rows(min_row=2, values_only=True)
    }
    # housing: 10 daa of forest in force, 100 daa of mire proposed; LNFR: 223,7 -> 133,7
    assert per_code[1110] == (pytest.approx(10), pytest.approx(100), pytest.approx(90))
    assert per_code[5100] == (pytest.approx(223.7), pytest.approx(133.7), pytest.approx(-90))
    assert per_code[1300] == (pytest.approx(30), pytest.approx(30), 0)
    status = book["Status"]
    header = [c.value for c in status[1]]
    assert header[:4] == ["Arealformål", "Navn", "Soner", "Areal (daa)"]
    first = {row[0]: row for row in status.iter_rows(min_row=2, values_only=True)}
    assert first[1110][3] == pytest.approx(100)
    assert first[1110][header.index("Myr (daa)")] == pytest.approx(100)
    reserve = book["Arealreserve"]
    names = [row[1] for row in reserve.iter_rows(min_row=2, values_only=True)]
    assert names[:2] == ["B2", "N1"]
    changes = list(book["Endringer"].iter_rows(min_row=2, values_only=True))
    assert any(row[0] == "Inn i byggeområde" and row[3] == pytest.approx(100) for row in changes)

    from geoservice.cli import app

    out = CliRunner().invoke(
        app,
        ["arealregnskap", str(proposed), "--compare", str(in_force), "--json"],
        env={"GEOSERVICE_DATABASE_URL": str(settings.database_url)},
    )
    assert out.exit_code == 0, out.output
    printed = json.loads(out.stdout)
    assert printed["change"]["into_daa"] == pytest.approx(100)


def test_map_and_printable_report(client: TestClient, plans: tuple[int, int]) -> None:
    in_force, proposed = plans
    queued = client.post(
        f"/api/plans/{proposed}/land-account", json={"compare_layer_id": in_force}
    ).json()
    job = queued["id"]
    page = client.get(f"/maps/plans/analyses/{job}/arealregnskap")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Arealregnskap – KPA 2027" in html
    assert "Inn i byggeområde" in html and "Ut av byggeområde" in html
    # the panel: reserve of 120 daa, 3 215 + 155 t CO2e, the Norwegian way
    assert "120,0 daa, 3\u00a0371 t CO2e" in html
    report = client.get(f"/api/plans/analyses/{job}/arealregnskap?saksnummer=2027/123")
    assert report.status_code == 200
    text = report.text
    assert "Arealregnskap: KPA 2027" in text and "2027/123" in text
    assert "Sammenlignet med KPA 2015: 100,0 daa inn i byggeområder, 10,0 daa ut" in text
    assert "[kdd-2023-arealregnskap]" in text
    english = client.get(f"/api/plans/analyses/{job}/arealregnskap?lang=en").text
    assert "Compared with KPA 2015: 100.0 daa into building zones" in english
    pdf = client.get(f"/api/plans/analyses/{job}/arealregnskap.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.content))
    words = " ".join(p.extract_text() for p in reader.pages)
    assert "Arealreserve" in words and "Endringer" in words
    # a plan analysis is not a land account, and a running account has no workbook yet
    plan_job = client.post(f"/api/plans/{proposed}/analysis", json={}).json()["id"]
    refused = client.get(f"/api/plans/analyses/{plan_job}/arealregnskap.xlsx")
    assert refused.status_code == 422 and "not a land account" in refused.json()["detail"]


def test_bad_requests_are_refused_before_queuing(
    client: TestClient, plans: tuple[int, int]
) -> None:
    proposed = plans[1]
    same = client.post(f"/api/plans/{proposed}/land-account", json={"compare_layer_id": proposed})
    assert same.status_code == 422 and "compared with itself" in same.json()["detail"]
    missing = client.post(f"/api/plans/{proposed}/land-account", json={"compare_layer_id": 999})
    assert missing.status_code == 404
    dense = client.post(
        f"/api/plans/{proposed}/land-account", json={"dwellings_per_daa": {"1110": 500}}
    )
    assert dense.status_code == 422 and "0–100" in dense.json()["detail"]
    code = client.post(f"/api/plans/{proposed}/land-account", json={"dwellings_per_daa": {"x": 1}})
    assert code.status_code in (400, 422)


def test_a_zone_density_from_the_plan_beats_the_default_per_arealformal(
    client: TestClient, plans: tuple[int, int], tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame(
        {"KPAREALFORMÅL": [1110, 1110], "OMRÅDENAVN": ["B3", "B4"], "BOLIGTETTHET": [3.0, None]},
        geometry=[MIRE_WEST, MIRE_EAST],
        crs=25833,
    )
    frame.to_file(tmp_path / "tett.gpkg")
    made = upload(client, tmp_path / "tett.gpkg", kind="land_use_plan", name="KPA tetthet")
    assert made.status_code == 201, made.text
    result = account(client, made.json()["layer_id"], dwellings_per_daa={"1110": 2.0})
    zones = {z["name"]: z for z in result["reserve"]["zones"]}
    assert zones["B3"]["dwellings"] == pytest.approx(300)  # its own 3 per daa on 100 daa
    assert zones["B4"]["dwellings"] == pytest.approx(247.4)  # the default 2 per daa
