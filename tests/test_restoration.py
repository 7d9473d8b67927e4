"""Restoration registry and progress, with areas and dates worked out by hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from tests.conftest import authorize
from tests.test_layers import KOMMUNER, upload

X0, Y0 = 262_000.0, 6_620_000.0  # Ås
BASELINE = box(X0, Y0, X0 + 100, Y0 + 100)  # 1 ha of degraded mire


@pytest.fixture
def baseline(client: TestClient, tmp_path: Path) -> None:
    degraded = gpd.GeoDataFrame(
        {"okosystem": ["wetland", "forest"], "basisaar": [2020, 2020]},
        geometry=[BASELINE, box(X0 + 500, Y0, X0 + 600, Y0 + 100)],
        crs=25833,
    )
    degraded.to_file(tmp_path / "degraded.gpkg")
    response = upload(client, tmp_path / "degraded.gpkg", kind="degraded_areas", name="forringet")
    assert response.status_code == 201, response.text


def project(
    client: TestClient,
    geom: Any,
    *statuses: tuple[str, str],
    eco: str = "wetland",
    name: str = "Myr",
) -> Any:
    body = {
        "geometry": mapping(geom),
        "crs": "EPSG:25833",
        "properties": {
            "name": name,
            "ecosystem_type": eco,
            "status_history": [{"status": s, "date": d} for s, d in statuses],
            "methods": ["grøftetetting"],
            "quantities": {"ditch_km": 1.2},
        },
    }
    return client.post("/api/restoration/projects", json=body)


def progress(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/restoration/progress", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_overlaps_count_once_and_status_dates_matter(client: TestClient, baseline: None) -> None:
    assert (
        project(
            client,
            box(X0, Y0, X0 + 60, Y0 + 100),
            ("planned", "2023-01-01"),
            ("initiated", "2024-05-01"),
        ).status_code
        == 201
    )
    assert (
        project(
            client, box(X0 + 40, Y0, X0 + 100, Y0 + 100), ("initiated", "2025-01-01")
        ).status_code
        == 201
    )
    assert (
        project(client, box(X0, Y0, X0 + 100, Y0 + 100), ("planned", "2024-01-01")).status_code
        == 201
    )  # planned never counts

    before = progress(client, ecosystem="wetland", as_of="2024-04-30")
    assert before["baseline_degraded_ha"] == pytest.approx(1.0)
    assert before["under_restoration_ha"] == 0

    first = progress(client, ecosystem="wetland", as_of="2024-12-31")
    assert first["under_restoration_ha"] == pytest.approx(0.6)
    assert first["share"] == pytest.approx(0.6)

    both = progress(client, ecosystem="wetland", as_of="2025-06-01")
    assert both["under_restoration_ha"] == pytest.approx(1.0)  # 0.6 + 0.6 − 0.2 overlap

    everything = progress(client, as_of="2025-06-01")  # all ecosystems: 2 ha of baseline
    assert everything["baseline_degraded_ha"] == pytest.approx(2.0)
    assert everything["share"] == pytest.approx(0.5)


def test_half_outside_the_baseline_counts_half(client: TestClient, baseline: None) -> None:
    assert (
        project(
            client, box(X0 + 50, Y0, X0 + 150, Y0 + 100), ("initiated", "2024-01-01")
        ).status_code
        == 201
    )
    result = progress(client, ecosystem="wetland", as_of="2024-06-01")
    assert result["under_restoration_ha"] == pytest.approx(0.5)
    assert result["restoration_outside_baseline_ha"] == pytest.approx(0.5)


def test_region_filter_with_real_boundaries(client: TestClient, baseline: None) -> None:
    assert upload(client, KOMMUNER, kind="boundaries", name="kommuner").status_code == 201
    assert project(client, BASELINE, ("initiated", "2024-01-01")).status_code == 201
    aas = progress(client, region="3218", as_of="2024-06-01")
    assert aas["region_kind"] == "kommune"
    assert aas["baseline_degraded_ha"] == pytest.approx(2.0)
    assert aas["under_restoration_ha"] == pytest.approx(1.0)
    baerum = progress(client, region="3201", as_of="2024-06-01")
    assert baerum["baseline_degraded_ha"] == 0 and baerum["under_restoration_ha"] == 0
    missing = client.get("/api/restoration/progress", params={"region": "9999"})
    assert missing.status_code == 404
    # a kommune by its name is the same kommune
    named = progress(client, region="Ås", as_of="2024-06-01")
    assert named["region"] == "3218" and named["under_restoration_ha"] == pytest.approx(1.0)
    assert progress(client, region="aas", as_of="2024-06-01")["region"] == "3218"
    typo = client.get("/api/restoration/progress", params={"region": "Åss"})
    assert typo.status_code == 422 and "did you mean Ås" in typo.json()["detail"]
    twice = client.get("/api/restoration/progress", params={"region": "Våler"})
    assert twice.status_code == 422
    assert "3114" in twice.json()["detail"] and "3419" in twice.json()["detail"]


def test_pace_and_projection_on_a_constructed_history(client: TestClient, tmp_path: Path) -> None:
    big = box(X0, Y0, X0 + 1000, Y0 + 1000)  # 100 ha of degraded forest
    gpd.GeoDataFrame({"okosystem": ["forest"]}, geometry=[big], crs=25833).to_file(
        tmp_path / "base.gpkg"
    )
    assert (
        upload(client, tmp_path / "base.gpkg", kind="degraded_areas", name="b").status_code == 201
    )
    # 3 ha from 2022, 3 ha more from 2024.
    project(client, box(X0, Y0, X0 + 300, Y0 + 100), ("initiated", "2022-01-01"), eco="forest")
    project(
        client, box(X0, Y0 + 100, X0 + 300, Y0 + 200), ("initiated", "2024-01-01"), eco="forest"
    )
    result = progress(client, ecosystem="forest", as_of="2025-01-01")
    assert result["under_restoration_ha"] == pytest.approx(6.0)
    assert result["pace_last_3_years_ha_per_year"] == pytest.approx(1.0)  # (6 − 3) / 3
    gbf = next(t for t in result["targets"] if t["code"] == "gbf-t2")
    assert (gbf["share"], gbf["year"]) == (0.30, 2030)
    assert gbf["target_ha"] == pytest.approx(30.0)
    assert gbf["remaining_ha"] == pytest.approx(24.0)
    assert gbf["pace_needed_ha_per_year"] == pytest.approx(24.0 / 5)
    assert gbf["projected_year"] == pytest.approx(2025 + 24.0)
    assert gbf["on_track"] is False
    national = next(t for t in result["targets"] if t["code"] == "national-15")
    assert national["remaining_ha"] == pytest.approx(9.0)


def test_history_registry_as_of_and_delete(client: TestClient, baseline: None) -> None:
    created = project(client, BASELINE, ("planned", "2024-01-01"))
    pid = created.json()["id"]
    stamp = datetime.now().astimezone().isoformat()
    body = {
        "geometry": mapping(BASELINE),
        "crs": "EPSG:25833",
        "properties": {
            "name": "Myr, restaurert",
            "ecosystem_type": "wetland",
            "status_history": [
                {"status": "planned", "date": "2024-01-01"},
                {"status": "initiated", "date": "2024-09-01"},
            ],
        },
    }
    updated = client.put(f"/api/restoration/projects/{pid}", json=body)
    assert updated.status_code == 200 and updated.json()["version"] == 2
    history = client.get(f"/api/restoration/projects/{pid}/history").json()["versions"]
    assert [(v["version"], v["change"], v["name"]) for v in history] == [
        (1, "create", "Myr"),
        (2, "update", "Myr, restaurert"),
    ]
    then = client.get("/api/restoration/projects", params={"recorded_as_of": stamp}).json()
    assert [(p["id"], p["version"]) for p in then["items"]] == [(pid, 1)]
    assert client.delete(f"/api/restoration/projects/{pid}").status_code == 204
    assert client.get(f"/api/restoration/projects/{pid}").status_code == 404
    assert client.get("/api/restoration/projects").json()["total"] == 0
    assert len(client.get(f"/api/restoration/projects/{pid}/history").json()["versions"]) == 3


def test_only_the_registering_ecologist_or_an_admin_changes_a_project(
    client: TestClient, baseline: None
) -> None:
    admin = client.headers["Authorization"]
    authorize(client, "ecologist", user="kari")
    pid = project(client, BASELINE, ("initiated", "2024-01-01")).json()["id"]
    before = progress(client, ecosystem="wetland", as_of="2025-01-01")["under_restoration_ha"]
    assert before == pytest.approx(1.0)
    authorize(client, "ecologist", user="ola")
    body = {
        "geometry": mapping(BASELINE),
        "crs": "EPSG:25833",
        "properties": {
            "name": "Ola's",
            "ecosystem_type": "wetland",
            "status_history": [{"status": "planned", "date": "2024-01-01"}],
        },
    }
    for refused in (
        client.put(f"/api/restoration/projects/{pid}", json=body),
        client.delete(f"/api/restoration/projects/{pid}"),
    ):
        assert refused.status_code == 403, refused.text
        assert "kari" in refused.json()["detail"]
    authorize(client, "ecologist", user="kari")
    assert client.delete(f"/api/restoration/projects/{pid}").status_code == 204
    gone = client.get(f"/api/restoration/projects/{pid}")
    assert gone.status_code == 404 and "/restore" in gone.json()["detail"]
    assert progress(client, ecosystem="wetland", as_of="2025-01-01")["under_restoration_ha"] == 0
    authorize(client, "ecologist", user="ola")
    assert client.post(f"/api/restoration/projects/{pid}/restore").status_code == 403
    client.headers["Authorization"] = admin  # an administrator may restore anyone's project
    restored = client.post(f"/api/restoration/projects/{pid}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 3 and restored.json()["name"] == "Myr"
    assert progress(client, ecosystem="wetland", as_of="2025-01-01")[
        "under_restoration_ha"
    ] == pytest.approx(1.0)
    again = client.post(f"/api/restoration/projects/{pid}/restore")
    assert again.status_code == 409
    changes = [
        v["change"]
        for v in client.get(f"/api/restoration/projects/{pid}/history").json()["versions"]
    ]
    assert changes == ["create", "delete", "restore"]


def test_bad_projects_are_refused_and_nothing_is_saved(
    client: TestClient, baseline: None, database_url: str
) -> None:
    cases = {
        "unknown_ecosystem_type": project(
            client, BASELINE, ("planned", "2024-01-01"), eco="tundra"
        ),
        "unknown_status": project(client, BASELINE, ("dreaming", "2024-01-01")),
        "status_dates_out_of_order": project(
            client, BASELINE, ("planned", "2024-05-01"), ("initiated", "2024-01-01")
        ),
        "bad_status_history": project(client, BASELINE, ("planned", "1. mai")),
    }
    for code, response in cases.items():
        assert response.status_code == 422, code
        assert response.json()["error"] == code
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM geoservice.restoration_project").fetchone()
    assert count is not None and count[0] == 0

    bowtie = {
        "type": "Polygon",
        "coordinates": [[[X0, Y0], [X0 + 100, Y0 + 100], [X0 + 100, Y0], [X0, Y0 + 100], [X0, Y0]]],
    }
    body = {
        "geometry": bowtie,
        "crs": "EPSG:25833",
        "properties": {
            "name": "Sløyfe",
            "ecosystem_type": "wetland",
            "status_history": [{"status": "initiated", "date": "2024-01-01"}],
        },
    }
    repaired = client.post("/api/restoration/projects", json=body)
    assert repaired.status_code == 201
    assert repaired.json()["geometry_repaired"] is True
    assert repaired.json()["area_ha"] == pytest.approx(0.5)


def test_timeseries_per_year_and_ecosystem(client: TestClient, baseline: None) -> None:
    project(client, box(X0, Y0, X0 + 50, Y0 + 100), ("initiated", "2021-06-01"))
    project(
        client, box(X0 + 500, Y0, X0 + 600, Y0 + 100), ("initiated", "2022-03-01"), eco="forest"
    )
    series = client.get("/api/restoration/timeseries", params={"start_year": 2020}).json()
    by = {(r["year"], r["ecosystem"]): r for r in series["series"]}
    assert by[(2020, "all")]["under_restoration_ha"] == 0
    assert by[(2021, "wetland")]["under_restoration_ha"] == pytest.approx(0.5)
    assert by[(2021, "forest")]["under_restoration_ha"] == 0
    assert by[(2022, "all")]["under_restoration_ha"] == pytest.approx(1.5)
    assert by[(2022, "all")]["share"] == pytest.approx(0.75)
    text = client.get(
        "/api/restoration/timeseries", params={"start_year": 2020, "format": "csv"}
    ).text
    assert text.splitlines()[0].startswith("year,as_of,region,ecosystem")
    assert "2022,2022-12-31,NO,all,2.0,1.5,0.75" in text
    # The series measures all year ends at once; each row must equal progress on that day.
    for row in series["series"]:
        eco = None if row["ecosystem"] == "all" else row["ecosystem"]
        day = client.get(
            "/api/restoration/progress", params={"as_of": row["as_of"], "ecosystem": eco or ""}
        ).json()
        assert (row["baseline_degraded_ha"], row["under_restoration_ha"], row["share"]) == (
            day["baseline_degraded_ha"],
            day["under_restoration_ha"],
            day["share"],
        ), row


def test_bulk_import_and_cli_progress(
    client: TestClient,
    baseline: None,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from geoservice.cli import app

    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal, so rich does not fold the table
    good = gpd.GeoDataFrame(
        {
            "navn": ["Myr A", "Myr B"],
            "okosystem": ["wetland", "wetland"],
            "status": ["initiated", "planned"],
            "status_date": ["2024-03-01", "2024-03-01"],
        },
        geometry=[box(X0, Y0, X0 + 50, Y0 + 100), box(X0 + 50, Y0, X0 + 100, Y0 + 100)],
        crs=25833,
    )
    good.to_file(tmp_path / "projects.gpkg")
    bad = good.assign(okosystem=["wetland", "tundra"])
    bad.to_file(tmp_path / "bad.gpkg")
    runner = CliRunner()
    refused = runner.invoke(app, ["restoration", "import", str(tmp_path / "bad.gpkg")])
    assert refused.exit_code == 1 and "Feature 2" in refused.output
    assert client.get("/api/restoration/projects").json()["total"] == 0  # all or nothing
    done = runner.invoke(app, ["restoration", "import", str(tmp_path / "projects.gpkg")])
    assert done.exit_code == 0, done.output
    assert client.get("/api/restoration/projects").json()["total"] == 2
    shown = runner.invoke(
        app, ["restoration", "progress", "--ecosystem", "wetland", "--as-of", "2024-06-01"]
    )
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "0.5 of 1.0 ha degraded under restoration (50.0%)" in text
    assert "gbf-t2" in text and "national-15" in text


def test_api_bulk_import(client: TestClient, baseline: None, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {
            "name": ["A"],
            "ecosystem_type": ["wetland"],
            "status_history": ['[{"status": "initiated", "date": "2024-01-01"}]'],
        },
        geometry=[BASELINE],
        crs=25833,
    )
    frame.to_file(tmp_path / "p.geojson", driver="GeoJSON")
    with (tmp_path / "p.geojson").open("rb") as fh:
        response = client.post(
            "/api/restoration/projects/import", files={"file": ("p.geojson", fh)}
        )
    assert response.status_code == 201, response.text
    assert response.json()["imported"] == 1
    assert progress(client, as_of="2024-06-01")["under_restoration_ha"] == pytest.approx(1.0)


def test_progress_in_a_drawn_polygon(client: TestClient, baseline: None) -> None:
    project(client, BASELINE, ("initiated", "2024-01-01"))
    # The western half of the degraded mire only.
    west = box(X0, Y0, X0 + 50, Y0 + 100)
    response = client.post(
        "/api/restoration/progress",
        json={
            "geometry": mapping(west),
            "crs": "EPSG:25833",
            "as_of": "2024-06-01",
        },
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["region_kind"] == "polygon"
    assert result["baseline_degraded_ha"] == pytest.approx(0.5)
    assert result["under_restoration_ha"] == pytest.approx(0.5)


def test_rewetting_carbon_effect(client: TestClient, baseline: None) -> None:
    body = {
        "geometry": mapping(BASELINE),
        "crs": "EPSG:25833",
        "properties": {
            "name": "Gjenfukting",
            "ecosystem_type": "wetland",
            "status_history": [{"status": "initiated", "date": "2024-01-01"}],
            "rewetting": {"drained_land_use": "forest_poor", "nutrient": "poor"},
        },
    }
    created = client.post("/api/restoration/projects", json=body)
    assert created.status_code == 201, created.text
    effect = created.json()["carbon_effect"]
    # Drained (boreal forest, nutrient-poor): CO2 0.92 + DOC 0.44 t; CH4 7.0 kg on 97.5 % and
    # 217 kg on the 2.5 % ditches; N2O 0.22 kg N2O-N. Rewetted: −0.34 t CO2-C, 41 kg CH4-C,
    # DOC 0.44 − 0.04·44/12, no N2O. GWP100 CH4 28, N2O 265.
    drained = (0.92 + 0.44) + (0.975 * 7.0 + 0.025 * 217) / 1000 * 28 + 0.22 * 44 / 28 * 265 / 1000
    rewetted = -0.34 * 44 / 12 + 0.041 * 16 / 12 * 28 + 0.44 - 0.04 * 44 / 12
    per_ha = drained - rewetted
    assert effect["t_co2e_per_ha_per_year"] == pytest.approx(per_ha, abs=1e-4)
    gases = effect["per_ha_per_year"]["drained"]
    assert gases["n2o_t"] == pytest.approx(0.22 * 44 / 28 / 1000, abs=1e-6)
    assert gases["total_t_co2e"] == pytest.approx(drained, abs=1e-4)
    assert effect["t_co2e_per_year"] == pytest.approx(per_ha * 1.0, abs=1e-3)
    assert all(f["source"] for f in effect["factors"])
    bad = {
        **body,
        "properties": {**body["properties"], "rewetting": {"drained_land_use": "parking"}},
    }
    refused = client.post("/api/restoration/projects", json=bad)
    assert refused.status_code == 422 and refused.json()["error"] == "bad_rewetting"
    # A forest category names its own nutrient status: the contrary is refused, naming the
    # valid combinations; left out, it follows the land use.
    contrary = {
        **body,
        "properties": {
            **body["properties"],
            "rewetting": {"drained_land_use": "forest_poor", "nutrient": "rich"},
        },
    }
    answer = client.post("/api/restoration/projects", json=contrary)
    assert answer.status_code == 422 and "forest_poor: poor" in answer.json()["detail"]
    rich = {
        **body,
        "properties": {**body["properties"], "rewetting": {"drained_land_use": "forest_rich"}},
    }
    made = client.post("/api/restoration/projects", json=rich)
    assert made.status_code == 201, made.text
    used = {f["item"] for f in made.json()["carbon_effect"]["factors"]}
    assert {"drained.forest_rich.co2", "drained.forest_rich.n2o", "rewetted.rich.ch4_c"} <= used
    # Cropland: the drained state's N2O (13 kg N2O-N) and ditch CH4 (5 % at 1165 kg) are
    # about a fifth of what rewetting avoids; leaving them out made it that much too low.
    farmland = {
        **body,
        "properties": {
            **body["properties"],
            "rewetting": {"drained_land_use": "cropland", "nutrient": "rich"},
        },
    }
    crop = client.post("/api/restoration/projects", json=farmland).json()["carbon_effect"]
    co2_only = (28.97 + 0.44) - (-0.55 * 44 / 12 + 0.137 * 16 / 12 * 28 + 0.44 - 0.04 * 44 / 12)
    n2o_ch4 = 13 * 44 / 28 * 265 / 1000 + 0.05 * 1165 / 1000 * 28
    assert crop["t_co2e_per_ha_per_year"] == pytest.approx(co2_only + n2o_ch4, abs=1e-3)
    assert 0.18 < n2o_ch4 / (co2_only + n2o_ch4) < 0.24


def test_registry_is_paged_with_links(client: TestClient, baseline: None) -> None:
    for i in range(3):
        assert project(client, BASELINE, ("planned", "2024-01-01"), name=f"P{i}").status_code == 201
    first = client.get("/api/restoration/projects", params={"limit": 2}).json()
    assert [p["name"] for p in first["items"]] == ["P0", "P1"] and first["total"] == 3
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    rest = client.get(nxt).json()
    assert [p["name"] for p in rest["items"]] == ["P2"]
    assert all(link["rel"] != "next" for link in rest["links"])


def test_overlapping_baselines_and_long_projects_count_once(
    client: TestClient, baseline: None, tmp_path: Path
) -> None:
    # a second baseline layer overlapping half of the 1 ha mire: the union is 2.5 ha
    more = gpd.GeoDataFrame(
        {"okosystem": ["wetland"]}, geometry=[box(X0 + 50, Y0, X0 + 150, Y0 + 100)], crs=25833
    )
    more.to_file(tmp_path / "more.gpkg")
    assert (
        upload(client, tmp_path / "more.gpkg", kind="degraded_areas", name="mer").status_code == 201
    )
    # 30 km × 100 m across several 10 km national grid cells, over all three baseline squares
    long = box(X0 - 15_000, Y0, X0 + 15_000, Y0 + 100)
    assert project(client, long, ("initiated", "2024-01-01")).status_code == 201
    national = progress(client, region="NO", as_of="2024-06-01")
    assert national["baseline_degraded_ha"] == pytest.approx(2.5)
    assert national["under_restoration_ha"] == pytest.approx(2.5)
    assert national["restoration_outside_baseline_ha"] == pytest.approx(300 - 2.5)
    wetland = progress(client, region="NO", ecosystem="wetland", as_of="2024-06-01")
    assert wetland["baseline_degraded_ha"] == pytest.approx(1.5)


def test_baseline_overlap_check_picks_the_method(
    client: TestClient, tmp_path: Path, database_url: str
) -> None:
    # one layer whose two squares overlap by half: 1.5 ha, not 2
    overlapping = gpd.GeoDataFrame(
        {"okosystem": ["wetland", "wetland"]},
        geometry=[BASELINE, box(X0 + 50, Y0, X0 + 150, Y0 + 100)],
        crs=25833,
    )
    overlapping.to_file(tmp_path / "overlap.gpkg")
    assert (
        upload(client, tmp_path / "overlap.gpkg", kind="degraded_areas", name="o").status_code
        == 201
    )
    assert (
        project(
            client, box(X0 + 100, Y0, X0 + 300, Y0 + 100), ("initiated", "2024-01-01")
        ).status_code
        == 201
    )
    union = progress(client, region="NO", as_of="2024-06-01")
    assert union["baseline_degraded_ha"] == pytest.approx(1.5)
    assert union["under_restoration_ha"] == pytest.approx(0.5)
    assert union["restoration_outside_baseline_ha"] == pytest.approx(1.5)
    assert union["provenance"]["baseline_method"].startswith("union")
    # the same area as two touching, non-overlapping squares: the sum-of-areas path
    coverage = gpd.GeoDataFrame(
        {"okosystem": ["wetland", "wetland"]},
        geometry=[box(X0, Y0, X0 + 50, Y0 + 100), box(X0 + 50, Y0, X0 + 150, Y0 + 100)],
        crs=25833,
    )
    coverage.to_file(tmp_path / "coverage.gpkg")
    assert (
        upload(client, tmp_path / "coverage.gpkg", kind="degraded_areas", name="o").status_code
        == 201
    )
    summed = progress(client, region="NO", as_of="2024-06-01")
    assert summed["provenance"]["baseline_method"].startswith("sum of areas")
    for key in ("baseline_degraded_ha", "under_restoration_ha", "restoration_outside_baseline_ha"):
        assert summed[key] == pytest.approx(union[key])
    with psycopg.connect(database_url) as conn:
        flags = conn.execute(
            "SELECT version, self_overlaps FROM geoservice.layer_version ORDER BY version"
        ).fetchall()
    assert flags == [(1, True), (2, False)]
    with psycopg.connect(database_url) as conn:
        scratch = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'geoservice' "
            "AND tablename LIKE 'scratch%'"
        ).fetchone()
    assert scratch == (0,), "the measurement's step tables are gone"


def test_touching_projects_union_once_and_single_ones_on_several_dates(
    client: TestClient, baseline: None
) -> None:
    # two projects overlapping by half on the 1 ha mire, one counting from 2022, one from
    # 2024; a third, alone, 1 ha outside the baseline
    first = box(X0, Y0, X0 + 60, Y0 + 100)
    assert project(client, first, ("initiated", "2022-01-01")).status_code == 201
    second = box(X0 + 30, Y0, X0 + 100, Y0 + 100)
    assert project(client, second, ("initiated", "2024-01-01")).status_code == 201
    lone = box(X0 + 1_000, Y0, X0 + 1_100, Y0 + 100)
    assert project(client, lone, ("initiated", "2022-01-01")).status_code == 201
    before = progress(client, region="NO", ecosystem="wetland", as_of="2023-06-01")
    assert before["under_restoration_ha"] == pytest.approx(0.6)
    after = progress(client, region="NO", ecosystem="wetland", as_of="2024-06-01")
    assert after["under_restoration_ha"] == pytest.approx(1.0)  # 0.6 + 0.7 - 0.3 overlap
    assert after["pace_last_3_years_ha_per_year"] == pytest.approx(1.0 / 3, abs=1e-4)
    assert after["restoration_outside_baseline_ha"] == pytest.approx(1.0)
