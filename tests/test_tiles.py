"""Vector tiles: decoded with mapbox-vector-tile and checked against hand-placed squares."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import box

from geoservice.settings import Settings
from tests.test_layers import upload

X0, Y0 = 262_000.0, 6_620_000.0  # Ås, EPSG:25833
SQUARES = [box(X0 + i * 300, Y0, X0 + i * 300 + 100, Y0 + 100) for i in range(3)]
TO_MERCATOR = Transformer.from_crs(25833, 3857, always_xy=True)
HALF_WORLD = 20_037_508.342789244


def tile_of(x: float, y: float, z: int) -> tuple[int, int]:
    """XYZ tile holding a point given in EPSG:25833."""
    mx, my = TO_MERCATOR.transform(x, y)
    size = 2 * HALF_WORLD / 2**z
    return math.floor((mx + HALF_WORLD) / size), math.floor((HALF_WORLD - my) / size)


def pixel_bounds(geom: Any, z: int, tx: int, ty: int) -> tuple[float, float, float, float]:
    """Where a 25833 geometry's corners land in tile units (4096 per tile, y down)."""
    size = 2 * HALF_WORLD / 2**z
    left, top = -HALF_WORLD + tx * size, HALF_WORLD - ty * size
    xs, ys = TO_MERCATOR.transform(*zip(*geom.exterior.coords, strict=True))
    px = [(x - left) / size * 4096 for x in xs]
    py = [(top - y) / size * 4096 for y in ys]
    return min(px), min(py), max(px), max(py)


def decode(data: bytes) -> dict[str, Any]:
    return dict(mapbox_vector_tile.decode(data, default_options={"y_coord_down": True}))


@pytest.fixture
def cover(client: TestClient, tmp_path: Path) -> int:
    frame = gpd.GeoDataFrame({"ARTYPE": [30, 11, 60]}, geometry=SQUARES, crs=25833)
    frame.to_file(tmp_path / "ar5.gpkg")
    response = upload(client, tmp_path / "ar5.gpkg", kind="land_cover", name="AR5 tiles")
    assert response.status_code == 201, response.text
    return int(response.json()["layer_id"])


def fids(client: TestClient, layer_id: int) -> dict[int, int]:
    """arealtype -> fid, from the OGC items of the layer."""
    items = client.get(f"/ogc/collections/{layer_id}/items?limit=100").json()
    return {f["properties"]["arealtype"]: int(f["id"]) for f in items["features"]}


def test_tile_holds_the_squares_where_they_are(client: TestClient, cover: int) -> None:
    z = 16
    tx, ty = tile_of(X0 + 50, Y0 + 50, z)
    response = client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layers = decode(response.content)
    assert list(layers) == ["features"]
    features = {f["id"]: f for f in layers["features"]["features"]}
    by_type = fids(client, cover)
    forest = features[by_type[30]]
    assert forest["properties"]["arealtype"] == 30
    coords = forest["geometry"]["coordinates"][0]
    got = (
        min(c[0] for c in coords),
        min(c[1] for c in coords),
        max(c[0] for c in coords),
        max(c[1] for c in coords),
    )
    want = pixel_bounds(SQUARES[0], z, tx, ty)
    # one tile unit at z16 is 0.15 m on the ground here; allow rounding to whole units
    assert got == pytest.approx(want, abs=1.01)
    # every square whose tile this is (plus buffer) is there, and nothing else
    inside = [
        arealtype
        for arealtype, geom in zip((30, 11, 60), SQUARES, strict=True)
        if tile_of(geom.centroid.x, geom.centroid.y, z) == (tx, ty)
    ]
    assert {by_type[a] for a in inside} <= set(features)


def test_low_zoom_tile_has_all_squares_and_far_tiles_are_empty(
    client: TestClient, cover: int
) -> None:
    z = 9
    tx, ty = tile_of(X0, Y0, z)
    layers = decode(client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf").content)
    assert sorted(f["properties"]["arealtype"] for f in layers["features"]["features"]) == [
        11,
        30,
        60,
    ]
    bergen = tile_of(-30_000, 6_730_000, 12)  # west coast, no data there
    far = client.get(f"/tiles/{cover}/12/{bergen[0]}/{bergen[1]}.pbf")
    assert far.status_code == 200 and decode(far.content) == {}
    # a tile on the other side of the world must not fail reprojection to UTM 33
    assert decode(client.get(f"/tiles/{cover}/3/0/7.pbf").content) == {}
    # At zoom 0 to 5 the 100 m squares are far below one tile unit (9.8 km at z0): rather
    # than vanish they come as points, one per few tile units, so the tile is not empty.
    world = decode(client.get(f"/tiles/{cover}/0/0/0.pbf").content)
    [point] = world["features"]["features"]
    assert point["geometry"]["type"] == "Point" and point["properties"]["arealtype_navn"]
    for z in range(1, 6):
        tx, ty = tile_of(X0, Y0, z)
        shown = decode(client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf").content)
        assert shown["features"]["features"], z


def test_tiles_name_only_the_codes_a_version_has(
    client: TestClient, cover: int, database_url: str
) -> None:
    """The file has arealtype only: its tiles carry arealtype_navn and no key for the kind's
    other coded attributes; the version records its smallest feature (the 100 m squares), so
    tiles at zooms where nothing can be that small skip looking for it."""
    tx, ty = tile_of(X0, Y0, 14)
    data = client.get(f"/tiles/{cover}/14/{tx}/{ty}.pbf").content
    assert b"arealtype_navn" in data
    assert b"treslag_navn" not in data and b"skogbonitet_navn" not in data
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT v.smallest_feature_m FROM geoservice.layer l JOIN geoservice.layer_version v "
            "ON v.id = l.active_version_id WHERE l.id = %s",
            (cover,),
        ).fetchone()
    assert row is not None and row[0] == pytest.approx(100.0)


def test_cache_headers_versions_and_bad_addresses(
    client: TestClient, cover: int, tmp_path: Path, settings: Settings
) -> None:
    z = 12
    tx, ty = tile_of(X0, Y0, z)
    named = client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf?version=1")
    assert named.headers["cache-control"] == "public, max-age=31536000, immutable"
    active = client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf")
    assert active.headers["cache-control"] == "public, max-age=60"
    assert active.headers["etag"] == named.headers["etag"]
    again = client.get(
        f"/tiles/{cover}/{z}/{tx}/{ty}.pbf", headers={"If-None-Match": named.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert any((settings.data_path / "tiles").rglob("*.pbf"))

    # version 2 has forest only; version 1's cached tile still answers for version=1
    frame = gpd.GeoDataFrame({"ARTYPE": [30]}, geometry=SQUARES[:1], crs=25833)
    frame.to_file(tmp_path / "v2.gpkg")
    assert (
        upload(client, tmp_path / "v2.gpkg", kind="land_cover", name="AR5 tiles").status_code == 201
    )
    v2 = decode(client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf").content)
    v1 = decode(client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf?version=1").content)
    assert len(v2["features"]["features"]) == 1
    assert len(v1["features"]["features"]) == 3
    assert client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf").headers["etag"] != named.headers["etag"]

    bad = client.get(f"/tiles/{cover}/3/8/0.pbf")
    assert bad.status_code == 422 and "0–7" in bad.json()["detail"]
    assert client.get(f"/tiles/{cover}/23/0/0.pbf").status_code == 422
    assert client.get(f"/tiles/{cover}/3/0/0.pbf?version=9").status_code == 404
    assert client.get("/tiles/999/3/0/0.pbf").status_code == 404


def test_the_cache_keeps_no_empty_tiles_and_stays_under_its_bound(
    settings: Any, cover: int, client: TestClient
) -> None:
    cache = client.app.state.tile_cache  # type: ignore[attr-defined]
    # 400 anonymous-style requests for empty tiles at z22 far outside Norway: nothing stored
    for i in range(400):
        response = client.get(f"/tiles/{cover}/22/{1000 + i}/{2000 + i}.pbf")
        assert response.status_code == 200 and response.content == b""
    assert cache.size() == 0
    assert not any(p.is_file() for p in (settings.data_path / "tiles").rglob("*"))
    # Tiles with data are kept, within the bound: a small cache evicts the oldest.
    cache.max_bytes = 300
    stored = []
    for z in range(12, 20):
        tx, ty = tile_of(X0 + 50, Y0 + 50, z)
        data = client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf").content
        assert data
        stored.append(len(data))
    assert sum(stored) > cache.max_bytes
    assert 0 < cache.size() <= cache.max_bytes


def test_ogc_tiles_tilejson_and_code_names(client: TestClient, cover: int) -> None:
    """OGC API – Tiles: the tileset of a collection leads to the same tiles as the XYZ URL,
    TileJSON names the layer's fields, and every coded attribute carries its name."""
    slug = client.get(f"/ogc/collections/{cover}").json()["id"]
    assert slug == "ar5-tiles"
    links = client.get(f"/ogc/collections/{slug}").json()["links"]
    tiles_href = next(x["href"] for x in links if x["rel"].endswith("tilesets-vector"))
    tilesets = client.get(tiles_href).json()["tilesets"]
    assert [t["tileMatrixSetURI"] for t in tilesets] == [
        "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
        "http://testserver/ogc/tileMatrixSets/UTM33N",
    ]
    tileset = client.get(tilesets[0]["links"][0]["href"]).json()
    item = next(x for x in tileset["links"] if x["rel"] == "item")["href"]
    assert item.endswith("/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    z = 16
    tx, ty = tile_of(X0 + 50, Y0 + 50, z)
    url = item.format(tileMatrix=z, tileRow=ty, tileCol=tx)
    ogc = client.get(url)
    assert ogc.status_code == 200 and ogc.headers["content-type"].endswith("vector-tile")
    xyz = client.get(f"/tiles/{cover}/{z}/{tx}/{ty}.pbf")
    assert decode(ogc.content) == decode(xyz.content)
    wide = client.get("/tiles/{}/{}/{}/{}.pbf".format(cover, 12, *tile_of(X0 + 350, Y0 + 50, 12)))
    names = {
        f["properties"]["arealtype"]: f["properties"]["arealtype_navn"]
        for f in decode(wide.content)["features"]["features"]
    }
    assert names[30] == "Skog" and names[11] == "Bebygd" and names[60] == "Myr"
    tilejson = client.get(
        next(x["href"] for x in tileset["links"] if x["rel"] == "describedby")
    ).json()
    assert tilejson["tilejson"] == "3.0.0"
    assert tilejson["tiles"][0].endswith("/WebMercatorQuad/{z}/{y}/{x}")
    fields = tilejson["vector_layers"][0]["fields"]
    assert fields["arealtype"] == "Number" and fields["arealtype_navn"] == "String"
    west, south, east, north = tilejson["bounds"]
    assert 10 < west < east < 11 and 59 < south < north < 60
    tms = client.get("/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert tms["tileMatrices"][0]["matrixWidth"] == 1
    assert tms["tileMatrices"][12]["cellSize"] == pytest.approx(38.21851414258813)
    assert client.get("/ogc/tileMatrixSets/UTM99").status_code == 404
    conformance = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conformance


def test_utm33_tiles_put_a_square_where_it_is_in_euref89(client: TestClient, cover: int) -> None:
    """UTM 33 tiles (Kartverket's tiling of EPSG:25833: top left −2 500 000, 9 045 984; level 0
    one tile of 5 545 984 m) are cut in the storage CRS: a 100 m square lands on the tile
    units its EUREF89 coordinates say, with no reprojection in between."""
    tms = client.get("/ogc/tileMatrixSets/UTM33N").json()
    level0 = tms["tileMatrices"][0]
    assert level0["pointOfOrigin"] == [-2_500_000.0, 9_045_984.0]
    assert level0["cellSize"] == pytest.approx(21_664.0)
    assert level0["scaleDenominator"] == pytest.approx(77_371_428.57, rel=1e-9)
    z = 12
    size = 5_545_984.0 / 2**z  # ≈ 1 354 m
    col = math.floor((X0 + 50 + 2_500_000) / size)
    row = math.floor((9_045_984 - (Y0 + 50)) / size)
    answer = client.get(f"/ogc/collections/{cover}/tiles/UTM33N/{z}/{row}/{col}")
    assert answer.status_code == 200, answer.text
    features = decode(answer.content)["features"]["features"]
    forest = next(f for f in features if f["properties"]["arealtype"] == 30)
    left, top = -2_500_000 + col * size, 9_045_984 - row * size
    xs = [c[0] for c in forest["geometry"]["coordinates"][0]]
    ys = [c[1] for c in forest["geometry"]["coordinates"][0]]
    assert min(xs) == pytest.approx((X0 - left) / size * 4096, abs=1)
    assert max(xs) == pytest.approx((X0 + 100 - left) / size * 4096, abs=1)
    assert min(ys) == pytest.approx((top - Y0 - 100) / size * 4096, abs=1)
    assert max(ys) == pytest.approx((top - Y0) / size * 4096, abs=1)
    assert client.get(f"/ogc/collections/{cover}/tiles/UTM33N/tilejson.json").status_code == 404
