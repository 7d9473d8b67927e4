"""Raster layers: GeoTIFF in, COG in EPSG:25833 out, statistics and footprint in PostGIS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest
import rasterio
from fastapi.testclient import TestClient
from pyproj import Transformer
from rasterio.transform import from_origin

from tests.test_layer_input import published, refused
from tests.test_layers import upload

# 20 × 10 pixels of 10 m in Ås (EPSG:25833); values 0..199 t C/ha, one nodata pixel.
X0, Y0 = 262_000.0, 6_620_100.0


def write_tif(
    path: Path,
    *,
    crs: str | None = "EPSG:25833",
    values: np.ndarray | None = None,
    x0: float = X0,
    y0: float = Y0,
) -> np.ndarray:
    data = values if values is not None else np.arange(200, dtype="float32").reshape(10, 20)
    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "transform": from_origin(x0, y0, 10, 10),
        "nodata": -9999,
    }
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return data


def test_carbon_raster_becomes_a_cog(client: TestClient, database_url: str, tmp_path: Path) -> None:
    data = np.arange(200, dtype="float32").reshape(10, 20)
    data[0, 0] = -9999  # nodata
    write_tif(tmp_path / "carbon.tif", values=data)
    response = upload(client, tmp_path / "carbon.tif", kind="carbon_density", name="karbon")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["geometry_type"] == "Raster"
    assert result["bbox"] == pytest.approx([X0, Y0 - 100, X0 + 200, Y0])
    info = result["raster"]
    assert (info["width"], info["height"], info["resolution"]) == (20, 10, [10.0, 10.0])
    assert info["valid_pixels"] == 199
    assert (info["min"], info["max"]) == (1.0, 199.0)
    assert info["mean"] == pytest.approx(np.arange(1, 200).mean())
    assert info["unit"] == "t C/ha"

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT storage_path, ST_Area(bbox) FROM geoservice.layer_version WHERE id = %s",
            (result["version_id"],),
        ).fetchone()
    assert row is not None
    assert row[1] == pytest.approx(200 * 100)
    with rasterio.open(row[0]) as cog:
        assert cog.crs.to_epsg() == 25833
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        stored = cog.read(1, masked=True)
    assert float(stored.sum()) == pytest.approx(float(np.arange(1, 200).sum()))

    exported = client.get(f"/api/layers/{result['layer_id']}/export", params={"format": "tif"})
    assert exported.status_code == 200
    assert exported.content[:4] in (b"II*\x00", b"MM\x00*")
    assert (
        client.get(
            f"/api/layers/{result['layer_id']}/export", params={"format": "gpkg"}
        ).status_code
        == 422
    )
    assert client.get("/ogc/collections").json()["collections"] == []


def test_raster_in_another_utm_zone_is_reprojected(client: TestClient, tmp_path: Path) -> None:
    # The same place in EPSG:25832 coordinates.
    write_tif(tmp_path / "utm32.tif", crs="EPSG:25832", x0=598_000.0, y0=6_620_500.0)
    response = upload(client, tmp_path / "utm32.tif", kind="peat_depth", name="torv")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["source_crs"] == "EPSG:25832"
    assert result["raster"]["resampling"] == "bilinear"
    to33 = Transformer.from_crs(25832, 25833, always_xy=True)
    xs, ys = to33.transform(
        [598_000, 598_200, 598_000, 598_200], [6_620_500, 6_620_500, 6_620_400, 6_620_400]
    )
    expected = [min(xs), min(ys), max(xs), max(ys)]
    assert result["bbox"] == pytest.approx(expected, abs=15)  # within about a pixel


def test_bad_rasters(client: TestClient, database_url: str, tmp_path: Path) -> None:
    write_tif(tmp_path / "nocrs.tif", crs=None)
    detail = refused(
        upload(client, tmp_path / "nocrs.tif", kind="carbon_density", name="r"),
        422,
        "missing_crs",
        database_url,
    )
    assert "crs=EPSG:25833" in detail

    negative = np.full((5, 5), -3.0, dtype="float32")
    write_tif(tmp_path / "neg.tif", values=negative)
    refused(
        upload(client, tmp_path / "neg.tif", kind="carbon_density", name="r"),
        422,
        "bad_raster_values",
        database_url,
    )

    (tmp_path / "cut.tif").write_bytes((tmp_path / "neg.tif").read_bytes()[:300])
    refused(
        upload(client, tmp_path / "cut.tif", kind="carbon_density", name="r"),
        422,
        "corrupt_file",
        database_url,
    )

    write_tif(tmp_path / "far.tif", x0=5_000_000.0, y0=1_000_000.0)
    refused(
        upload(client, tmp_path / "far.tif", kind="carbon_density", name="r"),
        422,
        "outside_norway",
        database_url,
    )

    refused(
        upload(client, tmp_path / "neg.tif", kind="land_cover", name="r"),
        422,
        "kind_format_mismatch",
        database_url,
    )
    assert published(database_url) == (0, 0, 0)

    # A raster with a CRS named on upload is fine.
    ok = upload(client, tmp_path / "nocrs.tif", kind="carbon_density", name="r", crs="25833")
    assert ok.status_code == 201, ok.text
    rasters = list((tmp_path / "data" / "rasters").glob("*.tif"))
    assert len(rasters) == 1, "refused uploads leave no files behind"


def test_cli_imports_a_raster_with_its_pools(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from geoservice.cli import app

    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", database_url)
    monkeypatch.setenv("GEOSERVICE_DATA_DIR", str(tmp_path / "data"))
    write_tif(tmp_path / "agb.tif")
    result = CliRunner().invoke(
        app,
        [
            "layers",
            "import",
            str(tmp_path / "agb.tif"),
            "--kind",
            "carbon_density",
            "--name",
            "agb",
            "--pools",
            "c_above, c_below",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT raster->'pools' FROM geoservice.layer_version WHERE raster IS NOT NULL"
        ).fetchone()
    assert row is not None and row[0] == ["c_above", "c_below"]


@pytest.mark.parametrize(
    "shape",
    [
        "POLYGON ((1003 1503, 1017 1503, 1017 1988, 1003 1988, 1003 1503))",
        "circle",
        "ring with a hole",
        "MULTIPOLYGON (((1100 1600, 1155 1600, 1155 1633, 1100 1633, 1100 1600)), "
        "((1200 1600, 1255 1600, 1255 1633, 1200 1633, 1200 1600)))",
        "half outside the grid",
        "bow-tie repaired",
    ],
)
def test_pixel_coverage_equals_clipping_every_pixel(shape: str) -> None:
    import shapely

    from analyses.raster_sums import covered_m2

    shapes = {
        "circle": shapely.Point(1400, 1700).buffer(173, quad_segs=7),
        "ring with a hole": shapely.Point(1400, 1700)
        .buffer(220)
        .difference(shapely.Point(1390, 1710).buffer(90)),
        "half outside the grid": shapely.Point(1000, 2000).buffer(300),
        "bow-tie repaired": shapely.make_valid(
            shapely.Polygon([(1010, 1510), (1510, 1990), (1510, 1510), (1010, 1990)])
        ),
    }
    geom = shapes.get(shape) or shapely.from_wkt(shape)
    transform = from_origin(1000, 2000, 10, 10)  # 60 rows × 80 columns of 10 m pixels
    ours = covered_m2(geom, transform, 60, 80)
    i, j = np.mgrid[0:60, 0:80]
    pixels = shapely.box(1000 + 10 * j, 1990 - 10 * i, 1010 + 10 * j, 2000 - 10 * i)
    expected = shapely.area(shapely.intersection(pixels, geom))
    assert np.abs(ours - expected).max() < 1e-6
    assert ours.sum() == pytest.approx(geom.intersection(shapely.box(1000, 1400, 1800, 2000)).area)
