"""Layer store against real files: counts, areas, repairs, versions, round trips."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pyogrio
import pytest
from fastapi.testclient import TestClient

DATA = Path(__file__).resolve().parents[1] / "data"
N50 = DATA / "n50-arealdekke-aas" / "ArealdekkeN50.gpkg"
N50_AREAS = DATA / "n50-arealdekke-aas" / "areal_per_arealdekkeklasse.csv"
KOMMUNER = DATA / "kommuner-fylker-2024" / "Kommuner-M.geojson"
NATURTYPER = DATA / "naturtyper-nin-follo" / "naturtyper_nin_follo_sample.geojson"


def upload(client: TestClient, path: Path, **form: Any) -> Any:
    with path.open("rb") as fh:
        data = {k: str(v).lower() if isinstance(v, bool) else v for k, v in form.items()}
        return client.post("/api/layers", files={"file": (path.name, fh)}, data=data)


def area_by(database_url: str, version_id: int, key: str) -> dict[str, float]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT attrs->>%s, sum(ST_Area(geom)) FROM geoservice.feature "
            "WHERE version_id = %s GROUP BY 1",
            (key, version_id),
        ).fetchall()
    return {str(k): float(a) for k, a in rows}


def test_n50_upload_keeps_every_polygon_and_area(client: TestClient, database_url: str) -> None:
    response = upload(client, N50, kind="land_cover", name="N50 Ås", licence="© Kartverket")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 1286
    assert result["source_crs"] == "EPSG:25833"
    assert result["storage_crs"] == "EPSG:25833"
    assert result["field_map"] == {"n50_klasse": "klasse"}
    assert result["repairs"]["repaired"] == 0
    source = gpd.read_file(N50)
    assert result["bbox"] == pytest.approx(list(source.total_bounds), abs=1e-6)
    # A clean file is counted and bounded while staging; the stored rows must agree exactly.
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT count(*), ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)), "
            "ST_XMax(ST_Extent(geom)), ST_YMax(ST_Extent(geom)) FROM geoservice.feature "
            "WHERE version_id = %s",
            (result["version_id"],),
        ).fetchone()
    assert stored is not None and stored[0] == 1286
    assert result["bbox"] == list(stored[1:])
    # Large geometries are compressed with lz4 where the server has it (pglz was 6x slower).
    with psycopg.connect(database_url) as conn:
        methods = conn.execute(
            "SELECT array_agg(DISTINCT pg_column_compression(geom)), "
            "(SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
            " WHERE name = 'default_toast_compression') "
            "FROM geoservice.feature WHERE version_id = %s",
            (result["version_id"],),
        ).fetchone()
    assert methods is not None
    assert methods[0] == (["lz4", None] if methods[1] else ["pglz", None])

    areas = area_by(database_url, result["version_id"], "n50_klasse")
    with N50_AREAS.open() as fh:
        expected = {row["klasse"]: float(row["areal"]) for row in csv.DictReader(fh)}
    assert set(areas) == set(expected)
    for klasse, area in expected.items():
        assert areas[klasse] == pytest.approx(area, rel=1e-9), klasse

    # The N50 -> AR5 crosswalk fills arealtype: skog 800 -> 30, myr 100 -> 60.
    ar5 = area_by(database_url, result["version_id"], "arealtype")
    assert ar5["30"] == pytest.approx(expected["800"], rel=1e-9)
    assert ar5["60"] == pytest.approx(expected["100"], rel=1e-9)
    assert ar5["11"] == pytest.approx(
        sum(expected[k] for k in ("110", "120", "300", "500", "900")), rel=1e-9
    )


def test_municipalities_are_repaired_and_reprojected(client: TestClient, database_url: str) -> None:
    source = gpd.read_file(KOMMUNER)
    invalid = int((~source.is_valid).sum())
    assert invalid > 0

    response = upload(client, KOMMUNER, kind="boundaries", name="kommuner")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["source_crs"] == "EPSG:4326"
    assert result["feature_count"] == len(source) == 357
    assert result["repairs"]["repaired"] == invalid
    assert result["repairs"]["dropped_empty"] == 0

    expected = source.to_crs(25833)
    expected["geometry"] = expected.make_valid()
    aas = float(expected.loc[expected.kommunenummer == "3218"].area.iloc[0])
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT ST_Area(geom), ST_SRID(geom), ST_IsValid(geom), attrs->>'navn' "
            "FROM geoservice.feature WHERE version_id = %s AND attrs->>'kommunenummer' = '3218'",
            (result["version_id"],),
        ).fetchone()
        invalid_left = conn.execute(
            "SELECT count(*) FROM geoservice.feature "
            "WHERE version_id = %s AND NOT ST_IsValid(geom)",
            (result["version_id"],),
        ).fetchone()
    assert row is not None and invalid_left is not None
    assert row[0] == pytest.approx(aas, rel=1e-6)
    assert row[1:] == (25833, True, "Ås")
    assert invalid_left[0] == 0


def test_nature_types_keep_ids_and_area(client: TestClient, database_url: str) -> None:
    response = upload(client, NATURTYPER, kind="nature_types", name="naturtyper")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 2079
    source = gpd.read_file(NATURTYPER)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT sum(ST_Area(geom)), count(DISTINCT attrs->>'naturbase_id'), "
            "sum((props->>'area_m2')::float) FROM geoservice.feature WHERE version_id = %s",
            (result["version_id"],),
        ).fetchone()
    assert row is not None
    assert row[0] == pytest.approx(float(source.area.sum()), rel=1e-9)
    assert row[1] == source["ID"].nunique()
    assert row[2] == pytest.approx(float(source["area_m2"].sum()), rel=1e-9)


def test_versions_activation_and_round_trip(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    first = upload(client, N50, kind="land_cover", name="arealdekke").json()
    layer_id = first["layer_id"]

    exported = client.get(f"/api/layers/{layer_id}/export", params={"format": "gpkg"})
    assert exported.status_code == 200
    gpkg = tmp_path / "roundtrip.gpkg"
    gpkg.write_bytes(exported.content)
    info = pyogrio.read_info(gpkg)
    assert info["crs"] == "EPSG:25833"
    assert info["features"] == 1286

    second = upload(client, gpkg, kind="land_cover", name="arealdekke")
    assert second.status_code == 201, second.text
    second_result = second.json()
    assert (second_result["layer_id"], second_result["version"]) == (layer_id, 2)
    before = area_by(database_url, first["version_id"], "n50_klasse")
    after = area_by(database_url, second_result["version_id"], "n50_klasse")
    assert after.keys() == before.keys()
    for klasse in before:
        assert after[klasse] == pytest.approx(before[klasse], rel=1e-9)

    versions = client.get(f"/api/layers/{layer_id}/versions").json()["versions"]
    assert [(v["version"], v["active"]) for v in versions] == [(2, True), (1, False)]
    assert versions[1]["source_filename"] == "ArealdekkeN50.gpkg"
    assert versions[1]["licence"] is None
    assert versions[1]["source_sha256"] == hashlib.sha256(N50.read_bytes()).hexdigest()
    assert versions[0]["source_sha256"] == hashlib.sha256(gpkg.read_bytes()).hexdigest()

    activated = client.post(f"/api/layers/{layer_id}/versions/1/activate")
    assert activated.status_code == 200
    assert activated.json()["active_version"]["version"] == 1
    assert (
        client.get(f"/api/layers/{layer_id}").json()["active_version"]["version_id"]
        == (first["version_id"])
    )
    missing = client.post(f"/api/layers/{layer_id}/versions/9/activate")
    assert missing.status_code == 404

    geojson = client.get(
        f"/api/layers/{layer_id}/export",
        params={"format": "geojson", "version": 2, "crs": "EPSG:4326"},
    )
    assert geojson.status_code == 200
    assert geojson.headers["content-type"].startswith("application/geo+json")
    path = tmp_path / "out.geojson"
    path.write_bytes(geojson.content)
    frame = gpd.read_file(path)
    assert frame.crs.to_epsg() == 4326
    assert len(frame) == 1286
    assert frame.to_crs(25833).area.sum() == pytest.approx(sum(before.values()), rel=1e-6)


def test_list_is_paginated(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        assert upload(client, NATURTYPER, kind="nature_types", name=name).status_code == 201
    page = client.get("/api/layers", params={"limit": 2}).json()
    assert page["total"] == 3
    assert [item["name"] for item in page["items"]] == ["c", "b"]
    assert any(link["rel"] == "next" for link in page["links"])
    rest = client.get("/api/layers", params={"limit": 2, "offset": 2}).json()
    assert [item["name"] for item in rest["items"]] == ["a"]
    assert all(link["rel"] != "next" for link in rest["links"])
