"""Every file format in, and every kind of bad input refused with nothing published."""

from __future__ import annotations

import json
import math
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pyarrow as pa
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import LineString, Point, Polygon, box

from geoservice.app import create_app
from geoservice.settings import Settings
from tests.conftest import authorize
from tests.test_layers import KOMMUNER, N50, upload

# Two squares in Ås, EPSG:25833: 100 m × 100 m and 50 m × 200 m.
X0, Y0 = 262_000.0, 6_620_000.0
SQUARES = [box(X0, Y0, X0 + 100, Y0 + 100), box(X0 + 500, Y0, X0 + 550, Y0 + 200)]
SQUARE_AREA = 10_000 + 10_000


def plan_frame(codes: list[Any], crs: int | None = 25833) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"RPAREALFORMÅL": codes, "PLANID": ["3218_2024001"] * len(codes), "KOMM": "3218"},
        geometry=SQUARES[: len(codes)],
        crs=crs,
    )


def published(database_url: str) -> tuple[int, int, int]:
    """(layers, versions, feature partitions) — all zero after a refused upload."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM geoservice.layer), "
            "(SELECT count(*) FROM geoservice.layer_version), "
            "(SELECT count(*) FROM pg_tables WHERE schemaname = 'geoservice' "
            " AND tablename LIKE 'feature_v%')"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def refused(response: Any, status: int, code: str, database_url: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert published(database_url) == (0, 0, 0)
    return str(body["detail"])


def zipped(tmp_path: Path, frame: gpd.GeoDataFrame, *, drop: tuple[str, ...] = ()) -> Path:
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir(exist_ok=True)
    frame.to_file(shp_dir / "plan.shp")
    archive = tmp_path / "plan.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in shp_dir.iterdir():
            if part.suffix not in drop:
                zf.write(part, part.name)
    return archive


@pytest.mark.parametrize(
    ("suffix", "driver"),
    [(".geojson", "GeoJSON"), (".gpkg", "GPKG"), (".fgb", "FlatGeobuf"), (".gml", "GML")],
)
def test_vector_formats(
    client: TestClient, database_url: str, tmp_path: Path, suffix: str, driver: str
) -> None:
    path = tmp_path / f"plan{suffix}"
    plan_frame([1110, 5100]).to_file(path, driver=driver)
    response = upload(client, path, kind="land_use_plan", name=f"plan{suffix}")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 2
    assert result["field_map"]["arealformal"] == "RPAREALFORMÅL"
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT attrs->>'arealformal', ST_Area(geom), attrs->>'plan_id' "
            "FROM geoservice.feature WHERE version_id = %s ORDER BY fid",
            (result["version_id"],),
        ).fetchall()
    # FlatGeobuf stores features in spatial-index order, so compare as a set.
    assert sorted((r[0], round(r[1], 6), r[2]) for r in rows) == [
        ("1110", 10_000.0, "3218_2024001"),
        ("5100", 10_000.0, "3218_2024001"),
    ]


def test_zipped_shapefile(client: TestClient, tmp_path: Path) -> None:
    archive = zipped(tmp_path, plan_frame([1110, 2010]))
    response = upload(client, archive, kind="land_use_plan", name="shp")
    assert response.status_code == 201, response.text
    assert response.json()["feature_count"] == 2


def test_csv_with_wkt_needs_a_crs(client: TestClient, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    path.write_text(
        "WKT,arealformal,PLANID\n"
        + "".join(f'"{g.wkt}",{c},p1\n' for g, c in zip(SQUARES, (1110, 3040), strict=True)),
        encoding="utf-8",
    )
    detail = refused(
        upload(client, path, kind="land_use_plan", name="csv"), 422, "missing_crs", database_url
    )
    assert "crs=EPSG:25833" in detail
    response = upload(client, path, kind="land_use_plan", name="csv", crs="EPSG:25833")
    assert response.status_code == 201, response.text
    assert response.json()["feature_count"] == 2
    assert response.json()["source_crs"] == "EPSG:25833"


def test_invalid_geometries_are_repaired_and_strays_dropped(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    bowtie = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100), (X0, Y0)])
    collection = shapely.GeometryCollection(
        [SQUARES[1], LineString([(X0, Y0 - 50), (X0 + 10, Y0 - 50)])]
    )
    stray_line = LineString([(X0, Y0 - 100), (X0 + 100, Y0 - 100)])
    frame = gpd.GeoDataFrame(
        {"arealformal": [1110, 1110, 1110, 1110]},
        geometry=[bowtie, collection, stray_line, None],
        crs=25833,
    )
    path = tmp_path / "messy.geojson"
    frame.to_file(path, driver="GeoJSON")
    response = upload(client, path, kind="land_use_plan", name="messy")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["repairs"] == {
        "kept": 2,
        "repaired": 1,
        "dropped_empty": 1,
        "dropped_wrong_type": 1,
        "trimmed": 1,
        "linearised": 0,
    }
    assert result["geometry_type"] == "MultiPolygon"
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT fid, ST_Area(geom), ST_NumGeometries(geom), repaired "
            "FROM geoservice.feature WHERE version_id = %s ORDER BY fid",
            (result["version_id"],),
        ).fetchall()
    # The bowtie becomes two triangles of 2 500 m² each; the collection keeps its polygon.
    assert [(round(a, 6), n, r) for _, a, n, r in rows] == [(5000.0, 2, True), (10000.0, 1, False)]


def test_clean_file_with_empties_drops_only_them(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame(
        {"arealformal": [1110, 1110, 1110, 1110]},
        geometry=[SQUARES[0], None, Polygon(), SQUARES[1]],
        crs=25833,
    )
    path = tmp_path / "gaps.geojson"
    frame.to_file(path, driver="GeoJSON")
    result = upload(client, path, kind="land_use_plan", name="gaps").json()
    assert result["repairs"] == {
        "kept": 2,
        "repaired": 0,
        "dropped_empty": 2,
        "dropped_wrong_type": 0,
        "trimmed": 0,
        "linearised": 0,
    }
    assert result["bbox"] == [X0, Y0, X0 + 550, Y0 + 200]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT fid, ST_Area(geom) FROM geoservice.feature WHERE version_id = %s ORDER BY fid",
            (result["version_id"],),
        ).fetchall()
    assert [round(a, 6) for _, a in rows] == [10_000.0, 10_000.0]


def circle_wkb(cx: float, cy: float, r: float) -> bytes:
    """A CurvePolygon whose ring is one full circle (ISO WKB; shapely cannot build it)."""
    points = [(cx - r, cy), (cx + r, cy), (cx - r, cy)]
    ring = struct.pack("<BII", 1, 8, len(points)) + b"".join(struct.pack("<dd", *p) for p in points)
    return struct.pack("<BII", 1, 10, 1) + ring


def test_curves_are_linearised_next_to_invalid_polygons(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """GEOS cannot read arcs, so the batch holding one is checked feature by feature: the
    bowtie beside it is still found invalid and repaired, the circle kept as a polygon."""
    bowtie = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100), (X0, Y0)])
    table = pa.table(
        {
            "geom": pa.array(
                [circle_wkb(X0 + 300, Y0 + 50, 50), shapely.to_wkb(bowtie), SQUARES[1].wkb],
                pa.binary(),
            ),
            "arealformal": [1110, 1110, 1110],
        }
    )
    path = tmp_path / "arcs.gpkg"
    pyogrio.write_arrow(
        table, path, layer="arcs", driver="GPKG", geometry_name="geom",
        geometry_type="Unknown", crs="EPSG:25833",
    )  # fmt: skip
    response = upload(client, path, kind="land_use_plan", name="arcs")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["repairs"] == {
        "kept": 3,
        "repaired": 1,
        "dropped_empty": 0,
        "dropped_wrong_type": 0,
        "trimmed": 0,
        "linearised": 1,
    }
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT ST_Area(geom), ST_NPoints(geom), repaired FROM geoservice.feature "
            "WHERE version_id = %s ORDER BY fid",
            (result["version_id"],),
        ).fetchall()
    # About 32 segments per quarter circle: inscribed in the circle, within 0.1 % of its area.
    circle = math.pi * 50**2
    assert 0.999 * circle < rows[0][0] < circle
    assert rows[0][1] > 120 and rows[0][2] is False
    assert [(round(a, 6), r) for a, _, r in rows[1:]] == [(5000.0, True), (10000.0, False)]


def test_unknown_codes_name_field_values_and_features(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "plan.gpkg"
    plan_frame([1110, 9999]).to_file(path)
    detail = refused(
        upload(client, path, kind="land_use_plan", name="p"), 422, "unknown_codes", database_url
    )
    assert "RPAREALFORMÅL" in detail and "'9999'" in detail and "[2]" in detail

    kept = upload(client, path, kind="land_use_plan", name="p", keep_unknown=True)
    assert kept.status_code == 201, kept.text
    unknown = kept.json()["unknown_codes"]["arealformal"]
    assert unknown == {"field": "RPAREALFORMÅL", "values": {"9999": 1}, "feature_ids": [2]}


def test_wrong_label_is_caught_with_the_likely_cause(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    aas = gpd.read_file(KOMMUNER).query("kommunenummer == '3218'")
    in_32 = aas.to_crs(25832)
    mislabelled = tmp_path / "aas.gpkg"
    in_32.set_crs(25833, allow_override=True).to_file(mislabelled)
    detail = refused(
        upload(client, mislabelled, kind="boundaries", name="aas"),
        422,
        "outside_norway",
        database_url,
    )
    assert "probably in EPSG:25832 but labelled EPSG:25833" in detail
    assert "bounding box" in detail

    fixed = upload(client, mislabelled, kind="boundaries", name="aas", crs="EPSG:25832")
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["source_crs"] == "EPSG:25832"


def test_degrees_read_as_metres_and_swapped_axes(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    degrees = refused(
        upload(client, KOMMUNER, kind="boundaries", name="k", crs="EPSG:25833"),
        422,
        "outside_norway",
        database_url,
    )
    assert "degrees" in degrees and "crs=EPSG:4326" in degrees

    n50 = gpd.read_file(N50).head(20)
    n50["geometry"] = shapely.transform(n50.geometry.values, lambda xy: xy[:, ::-1])
    swapped = tmp_path / "swapped.gpkg"
    n50.to_file(swapped)
    detail = refused(
        upload(client, swapped, kind="land_cover", name="s"), 422, "outside_norway", database_url
    )
    assert "swapped" in detail
    # The check can be turned off for data that really lies elsewhere.
    forced = upload(client, swapped, kind="land_cover", name="s", check_extent=False)
    assert forced.status_code == 201


def test_corrupt_truncated_and_empty_files(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    truncated = tmp_path / "cut.gpkg"
    truncated.write_bytes(N50.read_bytes()[:20_000])
    assert "could not be read" in refused(
        upload(client, truncated, kind="land_cover", name="x"), 422, "corrupt_file", database_url
    )
    cut_json = tmp_path / "cut.geojson"
    cut_json.write_text(KOMMUNER.read_text(encoding="utf-8")[:5000], encoding="utf-8")
    refused(
        upload(client, cut_json, kind="boundaries", name="x"), 422, "corrupt_file", database_url
    )
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    refused(upload(client, empty, kind="generic", name="x"), 422, "empty_file", database_url)
    no_features = tmp_path / "none.geojson"
    no_features.write_text('{"type": "FeatureCollection", "features": []}')
    refused(upload(client, no_features, kind="generic", name="x"), 422, "empty_file", database_url)


def test_bad_zips(client: TestClient, database_url: str, tmp_path: Path) -> None:
    no_shp = tmp_path / "docs.zip"
    with zipfile.ZipFile(no_shp, "w") as zf:
        zf.writestr("readme.txt", "no data here")
    assert "readme.txt" in refused(
        upload(client, no_shp, kind="generic", name="x"), 422, "zip_without_shp", database_url
    )
    no_prj = zipped(tmp_path, plan_frame([1110]), drop=(".prj",))
    assert ".prj" in refused(
        upload(client, no_prj, kind="land_use_plan", name="x"), 422, "missing_crs", database_url
    )
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"PK\x03\x04 this is not really a zip")
    refused(upload(client, not_zip, kind="generic", name="x"), 422, "corrupt_file", database_url)
    # Member names never become paths: a Shapefile stored under "../../etc/evil.*" is read
    # from fixed names inside the upload's folder, and nothing is written outside it.
    parts = zipped(tmp_path, plan_frame([1110]))
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(parts) as src, zipfile.ZipFile(slip, "w") as zf:
        for member in src.infolist():
            zf.writestr("../../etc/evil" + Path(member.filename).suffix, src.read(member))
        zf.writestr("../../etc/other.txt", "not needed, never extracted")
    slipped = upload(client, slip, kind="land_use_plan", name="slip")
    assert slipped.status_code == 201, slipped.text
    assert slipped.json()["feature_count"] == 1
    assert not (tmp_path.parent.parent / "etc" / "evil.shp").exists()
    assert not Path("/etc/evil.shp").exists()


def test_mixed_geometry_types(client: TestClient, database_url: str, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[Point(X0, Y0), SQUARES[0]], crs=25833)
    path = tmp_path / "mixed.geojson"
    frame.to_file(path, driver="GeoJSON")
    detail = refused(
        upload(client, path, kind="generic", name="x"), 422, "mixed_geometry_types", database_url
    )
    assert "1 points" in detail and "1 polygons" in detail


def test_unknown_kind_layer_choice_and_kind_conflict(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    assert "land_cover" in refused(
        upload(client, N50, kind="carbon", name="x"), 422, "unknown_kind", database_url
    )
    two = tmp_path / "two.gpkg"
    plan_frame([1110]).to_file(two, layer="plan")
    plan_frame([5100]).to_file(two, layer="plan_old")
    choose = upload(client, two, kind="land_use_plan", name="x")
    assert "plan_old" in refused(choose, 422, "choose_layer", database_url)
    chosen = upload(client, two, kind="land_use_plan", name="x", layer="plan_old")
    assert chosen.status_code == 201
    conflict = upload(client, N50, kind="land_cover", name="x")
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "kind_mismatch"


def test_raster_and_unsupported_files(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    tif = tmp_path / "carbon.tif"
    tif.write_bytes(b"II*\x00" + b"\x00" * 100)
    refused(
        upload(client, tif, kind="generic", name="x"), 422, "kind_format_mismatch", database_url
    )
    doc = tmp_path / "plan.docx"
    doc.write_bytes(b"not geodata")
    refused(upload(client, doc, kind="generic", name="x"), 422, "unsupported_format", database_url)


def test_missing_required_field_and_bad_field_map(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame({"TYPE": [1110]}, geometry=[SQUARES[0]], crs=25833)
    path = tmp_path / "plan.geojson"
    frame.to_file(path, driver="GeoJSON")
    detail = refused(
        upload(client, path, kind="land_use_plan", name="x"), 422, "missing_field", database_url
    )
    assert "arealformal" in detail and "TYPE" in detail
    bad = upload(client, path, kind="land_use_plan", name="x", field_map='{"arealformal": "NOPE"}')
    refused(bad, 422, "bad_field_map", database_url)
    mapped = upload(
        client, path, kind="land_use_plan", name="x", field_map=json.dumps({"arealformal": "TYPE"})
    )
    assert mapped.status_code == 201, mapped.text
    assert mapped.json()["field_map"] == {"arealformal": "TYPE"}


@pytest.fixture
def small_limit_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "d",
        migrate_on_start=False,
        max_upload_mb=1,
        max_upload_features=20,
    )
    with TestClient(create_app(settings)) as client:
        authorize(client)
        yield client


def test_upload_size_limit(
    small_limit_client: TestClient, database_url: str, tmp_path: Path
) -> None:
    assert N50.stat().st_size > 1024 * 1024
    refused(
        upload(small_limit_client, N50, kind="land_cover", name="x"),
        413,
        "upload_too_large",
        database_url,
    )


def test_feature_count_limit(
    small_limit_client: TestClient, database_url: str, tmp_path: Path
) -> None:
    squares = [box(X0 + 200 * i, Y0, X0 + 200 * i + 100, Y0 + 100) for i in range(21)]
    frame = gpd.GeoDataFrame({"ARTYPE": [30] * 21}, geometry=squares, crs=25833)
    for suffix in (".gpkg", ".csv"):
        path = tmp_path / f"many{suffix}"
        if suffix == ".csv":
            frame.assign(WKT=frame.geometry.to_wkt()).drop(columns="geometry").to_csv(
                path, index=False
            )
        else:
            frame.to_file(path)
        with path.open("rb") as fh:
            response = small_limit_client.post(
                "/api/layers",
                files={"file": (path.name, fh)},
                data={"kind": "land_cover", "name": "x", "crs": "EPSG:25833"},
            )
        detail = refused(response, 413, "too_many_features", database_url)
        assert "20" in detail and "geoservice layers import" in detail
    projects = tmp_path / "projects.geojson"
    frame.assign(navn="p", okosystem="forest", status="planned", status_date="2025-01-01").to_file(
        projects
    )
    with projects.open("rb") as fh:
        response = small_limit_client.post(
            "/api/restoration/projects/import", files={"file": (projects.name, fh)}
        )
    assert response.status_code == 413 and response.json()["error"] == "too_many_features"
    # Twenty is still fine.
    frame.iloc[:20].to_file(tmp_path / "twenty.gpkg")
    ok = upload(small_limit_client, tmp_path / "twenty.gpkg", kind="land_cover", name="x")
    assert ok.status_code == 201 and ok.json()["feature_count"] == 20, ok.text
    assert published(database_url) == (1, 1, 1)


def test_peat_probes_and_mires(client: TestClient, database_url: str, tmp_path: Path) -> None:
    probes = tmp_path / "probes.csv"
    probes.write_text(
        "WKT,torvdybde_cm\n"
        f'"POINT ({X0} {Y0})",120\n"POINT ({X0 + 10} {Y0})",85.5\n"POINT ({X0 + 20} {Y0})",\n',
        encoding="utf-8",
    )
    response = upload(client, probes, kind="peat", name="probes", crs="EPSG:25833")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["geometry_type"] == "MultiPoint"
    assert result["field_map"] == {"depth_cm": "torvdybde_cm"}
    with psycopg.connect(database_url) as conn:
        depths = conn.execute(
            "SELECT (attrs->>'depth_cm')::float FROM geoservice.feature "
            "WHERE version_id = %s ORDER BY fid",
            (result["version_id"],),
        ).fetchall()
    assert [d[0] for d in depths] == [120.0, 85.5, None]

    mires = gpd.GeoDataFrame({"dybdeklasse": ["Djup", "grunn"]}, geometry=SQUARES, crs=25833)
    mires.to_file(tmp_path / "myr.gpkg")
    response = upload(client, tmp_path / "myr.gpkg", kind="peat", name="myr")
    assert response.status_code == 201, response.text
    with psycopg.connect(database_url) as conn:
        classes = conn.execute(
            "SELECT attrs->>'depth_class' FROM geoservice.feature WHERE version_id = %s "
            "ORDER BY fid",
            (response.json()["version_id"],),
        ).fetchall()
    assert [c[0] for c in classes] == ["djup", "grunn"]  # code lists ignore case
