"""Plan-level analysis: every building zone valued like a proposal, ranked, rezoned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from tests.test_carbon import (  # noqa: F401
    BUILT,
    CO2,
    FOREST,
    MIRE,
    PEAT_20Y_T_CO2E_HA,
    X0,
    Y0,
    _carbon_raster,
    _probes,
    landscape,
)
from tests.test_layers import upload

FRIOMRADE = box(X0, Y0 - 300, X0 + 100, Y0 - 200)


@pytest.fixture
def plan(client: TestClient, landscape: None, tmp_path: Path) -> int:  # noqa: F811
    zones = gpd.GeoDataFrame(
        {"KPAREALFORMÅL": [1110, 1300, 1110, 3040], "PLANID": "3218_T1"},
        geometry=[FOREST, BUILT, MIRE, FRIOMRADE],
        crs=25833,
    )
    zones.to_file(tmp_path / "plan.gpkg")
    response = upload(client, tmp_path / "plan.gpkg", kind="land_use_plan", name="KPA test")
    assert response.status_code == 201, response.text
    return int(response.json()["layer_id"])


def run(client: TestClient, layer_id: int, **body: Any) -> dict[str, Any]:
    queued = client.post(f"/api/plans/{layer_id}/analysis", json=body)
    assert queued.status_code == 202, queued.text
    job = client.get(queued.json()["href"]).json()
    assert job["status"] == "done", job
    assert job["progress"] == 1
    return dict(job["result"])


def test_every_building_zone_is_valued_and_ranked(client: TestClient, plan: int) -> None:
    result = run(client, plan)
    zones = {z["fid"]: z for z in result["zones"]}
    assert set(zones) == {1, 2, 3}  # 3040 friområde is not a building zone
    forest, built, mire = zones[1], zones[2], zones[3]
    assert forest["built_share"] == 0.6
    assert forest["emission_t_co2e"]["central"] == pytest.approx(0.6 * 157 * CO2, abs=0.02)
    assert built["already_built"] is True
    assert built["emission_t_co2e"]["central"] == 0
    # Deep mire left in place under the built part: vegetation (4 t C/ha) at once, the peat's
    # CO2, CH4 and N2O as drained organic soil over 20 years.
    assert mire["emission_t_co2e"]["central"] == pytest.approx(
        0.6 * 22.37 * (4 * CO2 + PEAT_20Y_T_CO2E_HA), rel=1e-4
    )
    assert result["peat_excavated_share"] == 0
    assert result["already_built_zones"] == [2]
    assert result["ranking_by_emission"] == [3, 1]
    assert result["ranking_by_carbon_rich_area"] == [3, 1]
    assert result["totals_per_arealformal"]["1110"]["zones"] == 2
    assert result["total_emission_t_co2e"] == pytest.approx(
        forest["emission_t_co2e"]["central"] + mire["emission_t_co2e"]["central"], abs=0.05
    )
    assert result["provenance"]["preset"]["name"] == "miljodirektoratet-20y"


def test_an_excavated_share_loses_its_whole_stock(client: TestClient, plan: int) -> None:
    result = run(client, plan, peat_excavated_share=0.25)
    mire = next(z for z in result["zones"] if z["fid"] == 3)
    built_ha = 0.6 * 22.37  # a quarter dug out (944 t C/ha), the rest in place
    expected = built_ha * (4 * CO2 + 0.25 * 944 * CO2 + 0.75 * PEAT_20Y_T_CO2E_HA)
    assert mire["emission_t_co2e"]["central"] == pytest.approx(expected, rel=1e-4)
    assert result["peat_excavated_share"] == 0.25


def test_rezoning_reports_emissions_avoided(client: TestClient, plan: int) -> None:
    result = run(client, plan, rezone=[3])
    mire = next(z for z in result["zones"] if z["fid"] == 3)
    as_lnfr = mire["rezoned_to_lnfr_emission_t_co2e"]["central"]
    lnfr = 0.01 * 22.37 * (4 * CO2 + PEAT_20Y_T_CO2E_HA)  # LNFR: 1 % built
    assert as_lnfr == pytest.approx(lnfr, rel=1e-4)
    assert result["rezoning"]["emission_avoided_t_co2e"] == pytest.approx(
        mire["emission_t_co2e"]["central"] - as_lnfr, abs=0.05
    )


def test_bad_plan_requests(client: TestClient, plan: int) -> None:
    layers = client.get("/api/layers").json()["items"]
    cover = next(la["id"] for la in layers if la["kind"] == "land_cover")
    wrong = client.post(f"/api/plans/{cover}/analysis", json={})
    assert wrong.status_code == 422 and wrong.json()["error"] == "not_a_plan"
    assert client.post("/api/plans/9999/analysis", json={}).status_code == 404
    preset = client.post(f"/api/plans/{plan}/analysis", json={"preset": "x"})
    assert preset.status_code == 422
    queued = client.post(f"/api/plans/{plan}/analysis", json={"rezone": [4]})
    job = client.get(queued.json()["href"]).json()
    assert job["status"] == "failed"
    assert "not building zones" in job["error"]


def test_cli_plan_analysis(
    client: TestClient, plan: int, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from core.i18n import number
    from geoservice.cli import app

    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["plans", "analyse", str(plan), "--rezone", "3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "3/3" in text  # the progress bar saw every building zone
    api = run(client, plan, rezone=[3])
    total = number(api["total_emission_t_co2e"]).replace("\u00a0", " ")
    avoided = number(api["rezoning"]["emission_avoided_t_co2e"]).replace("\u00a0", " ")
    assert " " in total  # thousands apart, the Norwegian way
    assert f"sum {total} t CO2e" in text.replace("\u00a0", " ")
    assert f"sone 3 unngår {avoided} t CO2e" in text.replace("\u00a0", " ")


def test_a_plan_zone_is_valued_exactly_like_the_same_proposal(
    client: TestClient,
    landscape: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    """One valuation: with a carbon raster over the forest, a depth raster over the west of
    the mire, depth probes in its east and a nature type in the forest, each zone's result
    equals POST /api/proposals on the same polygon, class by class."""
    west = box(X0, Y0 + 1000, X0 + 1000, Y0 + 1100)
    east = box(X0 + 1200, Y0 + 1000, X0 + 2237, Y0 + 1100)
    agb = _carbon_raster(tmp_path / "agb.tif", [[50.0] * 10] * 10, X0, Y0 + 100)
    depth = _carbon_raster(tmp_path / "depth.tif", [[1.5] * 102] * 12, X0 - 10, Y0 + 1110)
    for path, data in (
        (agb, {"kind": "carbon_density", "name": "SR16 AGB", "pools": "c_above"}),
        (depth, {"kind": "peat_depth", "name": "torvdybde"}),
    ):
        with path.open("rb") as fh:
            made = client.post("/api/layers", files={"file": (path.name, fh)}, data=data)
        assert made.status_code == 201, made.text
    _probes(client, tmp_path, [(X0 + x, Y0 + 1050, 250) for x in range(1300, 2237, 300)])
    nature = gpd.GeoDataFrame(
        {"naturtype": ["Kalkskog"], "lokalitetskvalitet": ["høy kvalitet"]},
        geometry=[FOREST.buffer(-20)],
        crs=25833,
    )
    nature.to_file(tmp_path / "nin.gpkg")
    assert upload(client, tmp_path / "nin.gpkg", kind="nature_types", name="NiN").status_code == 201
    zones = gpd.GeoDataFrame(
        {"KPAREALFORMÅL": [1110, 1300, 1110], "PLANNAVN": ["Skogen", "Myra vest", "Myra øst"]},
        geometry=[FOREST, west, east],
        crs=25833,
    )
    zones.to_file(tmp_path / "plan2.gpkg")
    layer = upload(client, tmp_path / "plan2.gpkg", kind="land_use_plan", name="KPA 2")
    assert layer.status_code == 201, layer.text
    result = run(client, int(layer.json()["layer_id"]))
    by_fid = {z["fid"]: z for z in result["zones"]}
    methods = set()
    for fid, (geom, code) in enumerate(((FOREST, 1110), (west, 1300), (east, 1110)), start=1):
        zone = by_fid[fid]
        proposal = client.post(
            "/api/proposals",
            json={"footprint": mapping(geom), "crs": "EPSG:25833", "arealformal": code},
        )
        assert proposal.status_code == 201, proposal.text
        fp = proposal.json()["footprints"][0]
        assert zone["classes"] == fp["classes"], fid
        for key in (
            "stock_t_c",
            "emission_t_co2e",
            "emission_gases",
            "emission_immediate_t_co2",
            "emission_over_time_t_co2e",
            "preserved_unbuilt_t_c",
            "carbon_raster",
            "peat_depth",
            "flags",
            "built_share",
        ):
            assert zone[key] == fp[key], (fid, key)
        methods.add((fp["peat_depth"] or {}).get("method", "").split(" (")[0])
        if fid == 1:
            assert fp["carbon_raster"]["name"] == "SR16 AGB"
            assert fp["flags"]["nature_types"][0]["layer"] == "NiN"
    assert methods == {"", "depth raster", "depth probes"}
