"""OGC API – Features: our own requests, then GDAL's OAPIF driver and OWSLib as real clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box

from layers.gdal_env import SAFE_CONFIG
from tests.test_layers import N50, upload

EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@pytest.fixture
def n50_source() -> gpd.GeoDataFrame:
    return gpd.read_file(N50)


def _publish(client: TestClient) -> int:
    response = upload(client, N50, kind="land_cover", name="N50 Ås")
    assert response.status_code == 201, response.text
    return int(response.json()["layer_id"])


def _items(client: TestClient, cid: int, **params: Any) -> httpx.Response:
    return client.get(f"/ogc/collections/{cid}/items", params=params)


def test_landing_conformance_and_collections(client: TestClient) -> None:
    cid = _publish(client)
    landing = client.get("/ogc").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    conforms = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms
    collections = client.get("/ogc/collections").json()["collections"]
    # Readable ids: GDAL names exported tables after them; the layer number still resolves.
    assert [c["id"] for c in collections] == ["n50-as"]
    by_slug = client.get("/ogc/collections/n50-as").json()
    assert by_slug == client.get(f"/ogc/collections/{cid}").json()
    assert by_slug["links"][0]["href"].endswith("/ogc/collections/n50-as")
    coll = client.get(f"/ogc/collections/{cid}").json()
    assert coll["title"] == "N50 Ås"
    assert coll["storageCrs"] == EPSG.format(25833)
    assert {CRS84, EPSG.format(25833), EPSG.format(25832), EPSG.format(4326)} <= set(coll["crs"])
    lon0, lat0, lon1, lat1 = coll["extent"]["spatial"]["bbox"][0]
    assert 10.6 < lon0 < lon1 < 11.0 and 59.5 < lat0 < lat1 < 59.8  # Ås
    source = gpd.read_file(N50)
    assert coll["extent"]["spatial"]["storageCrsBbox"][0] == pytest.approx(
        list(source.total_bounds), abs=1e-6
    )


def test_paging_walks_every_feature_once(client: TestClient) -> None:
    cid = _publish(client)
    seen: list[int] = []
    url: str | None = f"/ogc/collections/{cid}/items?limit=500"
    pages = 0
    while url:
        page = client.get(url).json()
        assert page["numberMatched"] == 1286
        assert page["numberReturned"] == len(page["features"])
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        pages += 1
    assert pages == 3
    assert sorted(seen) == list(range(1, 1287))


def test_filters_bbox_and_crs(client: TestClient, n50_source: gpd.GeoDataFrame) -> None:
    cid = _publish(client)
    myr = _items(client, cid, n50_klasse="100", limit=100).json()
    assert myr["numberMatched"] == int((n50_source.klasse == 100).sum()) == 22
    assert {f["properties"]["klasse_navn"] for f in myr["features"]} == {"myr"}
    assert _items(client, cid, arealtype="60").json()["numberMatched"] == 22

    area = box(260_000, 6_620_000, 262_000, 6_622_000)
    expected = int(n50_source.intersects(area).sum())
    in_utm = _items(
        client, cid, bbox="260000,6620000,262000,6622000", **{"bbox-crs": EPSG.format(25833)}
    ).json()
    assert in_utm["numberMatched"] == expected > 0

    # The same box in lon/lat (CRS84), densified, finds the same features.
    lonlat = gpd.GeoSeries([area], crs=25833).segmentize(10).to_crs(4326).total_bounds
    inner = _items(client, cid, bbox=",".join(map(str, lonlat)), limit=1000).json()
    assert inner["numberMatched"] >= expected

    native = _items(client, cid, crs=EPSG.format(25833), limit=1)
    assert native.headers["content-crs"] == f"<{EPSG.format(25833)}>"
    feature = native.json()["features"][0]
    source_geom = n50_source.geometry.iloc[feature["id"] - 1]
    assert "crs" not in feature["geometry"]
    served = shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))
    assert served == pytest.approx(shapely.get_coordinates(source_geom), abs=0.001)

    lat_first = _items(client, cid, crs=EPSG.format(4326), limit=1).json()
    lon_first = _items(client, cid, limit=1).json()
    y, x = lat_first["features"][0]["geometry"]["coordinates"][0][0][0]
    lon, lat = lon_first["features"][0]["geometry"]["coordinates"][0][0][0]
    assert (y, x) == pytest.approx((lat, lon))
    assert 59 < lat < 60 and 10 < lon < 11


def test_single_item_and_errors(client: TestClient) -> None:
    cid = _publish(client)
    one = client.get(f"/ogc/collections/{cid}/items/5")
    assert one.status_code == 200
    assert one.json()["id"] == 5
    assert one.headers["content-type"].startswith("application/geo+json")
    assert client.get(f"/ogc/collections/{cid}/items/99999").status_code == 404
    assert client.get("/ogc/collections/424242").status_code == 404
    unknown = _items(client, cid, colour="red")
    assert unknown.status_code == 400 and "n50_klasse" in unknown.json()["detail"]
    bad_crs = _items(client, cid, crs=EPSG.format(3857))
    assert bad_crs.status_code == 400 and "not offered" in bad_crs.json()["detail"]
    assert _items(client, cid, bbox="1,2,3").status_code == 400


def gdal_client(script: str) -> dict[str, Any]:
    """Run GDAL as a client in its own process: the service's process keeps only the drivers
    for uploads (no OAPIF), and the client must not inherit its locked-down settings."""
    env = {k: v for k, v in os.environ.items() if k not in SAFE_CONFIG}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_gdal_oapif_driver_reads_the_collection(
    client: TestClient, live_server: str, n50_source: gpd.GeoDataFrame
) -> None:
    _publish(client)
    out = gdal_client(
        "import json, sys, pyogrio\n"
        f"f = pyogrio.read_dataframe('OAPIF:{live_server}/ogc', layer='n50-as')\n"
        "print(json.dumps({'n': len(f), 'area': float(f.to_crs(25833).area.sum()),"
        " 'classes': sorted(set(f.n50_klasse.astype(int).tolist()))}))"
    )
    assert out["n"] == 1286
    assert out["area"] == pytest.approx(float(n50_source.area.sum()), rel=1e-6)
    assert set(out["classes"]) == set(n50_source.klasse)


def test_owslib_reads_the_collection(client: TestClient, live_server: str) -> None:
    from owslib.ogcapi.features import Features

    _publish(client)
    api = Features(live_server + "/ogc")
    assert "n50-as" in [c["id"] for c in api.collections()["collections"]]
    items = api.collection_items("n50-as", limit=50, n50_klasse="800")
    assert items["numberReturned"] == 50
    assert items["numberMatched"] == 458
    assert all(f["properties"]["arealtype"] == 30 for f in items["features"])


def test_part1_answers_as_the_standard_says(client: TestClient) -> None:
    cid = _publish(client)
    for params in ({"limit": 0}, {"limit": "abc"}, {"offset": -1}, {"bbox": "10,60,11,59"}):
        refused = _items(client, cid, **params)
        assert refused.status_code == 400, (params, refused.text)
        body = refused.json()
        assert body["code"] and body["description"]  # the OGC exception schema
        assert body["error"] and body["detail"]  # and ours
    for path in (
        "/ogc/collections/abc",
        "/ogc/collections/abc/items",
        f"/ogc/collections/{cid}/items/abc",
    ):
        assert client.get(path).status_code == 404, path
    clamped = _items(client, cid, limit=5000).json()  # above the maximum: clamped, not refused
    assert clamped["numberReturned"] == 1000 and clamped["numberMatched"] == 1286
    head = client.head(f"/ogc/collections/{cid}/items")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("application/geo+json")


def test_private_reads_through_access_token_and_basic_auth(
    client: TestClient, settings: Any
) -> None:
    from geoservice.app import create_app
    from tests.conftest import authorize

    cid = _publish(client)
    private = settings.model_copy(update={"public_reads": False})
    with TestClient(create_app(private)) as qgis:
        token = authorize(qgis, "viewer")
        del qgis.headers["Authorization"]
        assert _items(qgis, cid).status_code == 401
        first = _items(qgis, cid, access_token=token, limit=500)
        assert first.status_code == 200, first.text
        assert first.json()["numberReturned"] == 500
        following = next(link for link in first.json()["links"] if link["rel"] == "next")
        assert qgis.get(following["href"]).status_code == 200  # the next page keeps working
        basic = qgis.get(
            f"/ogc/collections/{cid}/items", params={"limit": 10}, auth=("qgis", token)
        )
        assert basic.status_code == 200 and basic.json()["numberReturned"] == 10
        # A client that only follows links from the landing page keeps its token on every one.
        landing = qgis.get("/ogc", params={"access_token": token}).json()
        data = next(x["href"] for x in landing["links"] if x["rel"] == "data")
        collections = qgis.get(data).json()["collections"]
        items_href = next(x["href"] for x in collections[0]["links"] if x["rel"] == "items")
        tiles_href = next(x["href"] for x in collections[0]["links"] if x["rel"].endswith("vector"))
        assert "access_token=" in items_href and qgis.get(items_href).status_code == 200
        tileset = qgis.get(qgis.get(tiles_href).json()["tilesets"][0]["links"][0]["href"])
        template = next(x["href"] for x in tileset.json()["links"] if x["rel"] == "item")
        tile = qgis.get(template.format(tileMatrix=0, tileRow=0, tileCol=0))
        assert tile.status_code == 200
        item = qgis.get(items_href.replace("/items?", "/items/1?")).json()
        assert all("access_token=" in x["href"] for x in item["links"])


def test_queryables_describe_the_filters(client: TestClient) -> None:
    cid = _publish(client)
    links = client.get(f"/ogc/collections/{cid}").json()["links"]
    rel = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
    [link] = [x for x in links if x["rel"] == rel]
    answer = client.get(link["href"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/schema+json")
    schema = answer.json()
    props = schema["properties"]
    assert schema["additionalProperties"] is False and "geometry" in props
    assert props["n50_klasse"]["type"] == "integer" and 800 in props["n50_klasse"]["enum"]
    assert props["arealtype"]["type"] == "integer" and 30 in props["arealtype"]["enum"]
    # Every queryable works as a filter: the count matches the same filter in the data.
    forest = _items(client, cid, arealtype=30, limit=1).json()
    assert forest["numberMatched"] == 458
    conformance = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables" in conformance


def test_cql2_filters_match_the_same_filter_in_sql(client: TestClient, database_url: str) -> None:
    """Each CQL2 construct (text and JSON, geometries in CRS84 and in EPSG:25833) selects as
    many features as the same condition written in SQL against the stored version."""
    import psycopg

    cid = _publish(client)
    version = client.get(f"/api/layers/{cid}").json()["active_version"]["id"]
    utm_box = "260000,6620000,262000,6622000"
    polygon = "POLYGON((260000 6620000, 262500 6620000, 261000 6622500, 260000 6620000))"
    area = "ST_MakeEnvelope(260000, 6620000, 262000, 6622000, 25833)"
    cases = [
        ("arealtype = 30", "(attrs->>'arealtype')::int = 30"),
        (
            "arealtype <> 30 AND n50_klasse >= 400",
            "(attrs->>'arealtype')::int <> 30 AND (attrs->>'n50_klasse')::int >= 400",
        ),
        (
            "arealtype = 60 OR NOT n50_klasse < 800",
            "(attrs->>'arealtype')::int = 60 OR NOT (attrs->>'n50_klasse')::int < 800",
        ),
        (
            "klasse_navn LIKE 'sk%'",
            "coalesce(attrs->>'klasse_navn', props->>'klasse_navn') LIKE 'sk%%'",
        ),
        ("arealtype IN (21, 60)", "(attrs->>'arealtype')::int IN (21, 60)"),
        ("n50_klasse BETWEEN 100 AND 300", "(attrs->>'n50_klasse')::int BETWEEN 100 AND 300"),
        (
            "oppdateringsdato IS NOT NULL",
            "coalesce(attrs->>'oppdateringsdato', props->>'oppdateringsdato') IS NOT NULL",
        ),
        (
            f"S_INTERSECTS(geometry, POLYGON(({_lonlat_ring()})))",
            "ST_Intersects(geom, ST_Transform(ST_GeomFromText("
            f"'POLYGON(({_lonlat_ring()}))', 4326), 25833))",
        ),
    ]
    with psycopg.connect(database_url) as conn:

        def sql_count(condition: str) -> int:
            row = conn.execute(
                f"SELECT count(*) FROM geoservice.feature WHERE version_id = %s AND ({condition})",
                (version,),
            ).fetchone()
            assert row is not None
            return int(row[0])

        for cql, sql in cases:
            got = _items(client, cid, filter=cql, limit=1)
            assert got.status_code == 200, (cql, got.text)
            assert got.json()["numberMatched"] == sql_count(sql) > 0, cql
        # Geometries in EPSG:25833 through filter-crs: a box and a polygon.
        in_utm = _items(
            client,
            cid,
            filter=f"S_INTERSECTS(geometry, BBOX({utm_box}))",
            **{"filter-crs": EPSG.format(25833)},
        ).json()
        assert in_utm["numberMatched"] == sql_count(f"ST_Intersects(geom, {area})") > 0
        triangle = _items(
            client,
            cid,
            filter=f"S_INTERSECTS(geometry, {polygon})",
            **{"filter-crs": EPSG.format(25833)},
        ).json()
        expected = sql_count(f"ST_Intersects(geom, ST_GeomFromText('{polygon}', 25833))")
        assert triangle["numberMatched"] == expected > 0
        # CQL2 JSON, combined with a bbox and a simple property filter.
        as_json = {
            "op": "and",
            "args": [
                {"op": "=", "args": [{"property": "arealtype"}, 30]},
                {
                    "op": "s_intersects",
                    "args": [
                        {"property": "geometry"},
                        {"bbox": [float(v) for v in utm_box.split(",")]},
                    ],
                },
            ],
        }
        json_answer = _items(
            client,
            cid,
            filter=json.dumps(as_json),
            **{"filter-lang": "cql2-json", "filter-crs": EPSG.format(25833)},
        ).json()
        assert json_answer["numberMatched"] == sql_count(
            f"(attrs->>'arealtype')::int = 30 AND ST_Intersects(geom, {area})"
        )
    # The next page keeps the filter.
    paged = _items(client, cid, filter="arealtype = 30", limit=100).json()
    following = next(link["href"] for link in paged["links"] if link["rel"] == "next")
    assert "filter=" in following
    assert all(f["properties"]["arealtype"] == 30 for f in client.get(following).json()["features"])


def _lonlat_ring() -> str:
    ring = gpd.GeoSeries([box(260_000, 6_620_000, 262_000, 6_622_000)], crs=25833).to_crs(4326)
    return ", ".join(f"{x} {y}" for x, y in ring.iloc[0].exterior.coords)


def test_sortby_properties_and_bad_filters(
    client: TestClient, n50_source: gpd.GeoDataFrame
) -> None:
    cid = _publish(client)
    ordered = _items(client, cid, sortby="-n50_klasse,klasse_navn", limit=1000).json()
    classes = [f["properties"]["n50_klasse"] for f in ordered["features"]]
    assert classes == sorted(classes, reverse=True) and classes[0] == n50_source.klasse.max()
    slim = _items(client, cid, properties="klasse_navn,arealtype", limit=3).json()
    assert all(set(f["properties"]) == {"klasse_navn", "arealtype"} for f in slim["features"])
    for params, code in (
        ({"filter": "arealtype = "}, "invalid_filter"),
        ({"filter": "nonsense = 3"}, "invalid_filter"),
        ({"filter": "arealtype = 30", "filter-lang": "sql"}, "invalid_filter_lang"),
        ({"sortby": "height"}, "invalid_sortby"),
        ({"properties": "height"}, "invalid_properties"),
        (
            {"filter": "S_INTERSECTS(geometry, BBOX(0,0,1,1))", "filter-crs": "EPSG:3857"},
            "unsupported_crs",
        ),
    ):
        refused = _items(client, cid, **params)
        assert refused.status_code == 400, (params, refused.text)
        assert refused.json()["code"] == code, refused.text
    assert "queryables" in _items(client, cid, filter="nonsense = 3").json()["description"]
    spec = client.get("/openapi.json").json()
    parameters = {
        p["name"]
        for p in spec["paths"]["/ogc/collections/{collection_id}/items"]["get"]["parameters"]
    }
    assert {"filter", "filter-lang", "filter-crs", "sortby", "properties"} <= parameters


def test_slugs_etags_links_and_licence(client: TestClient) -> None:
    from layers.catalog import slug

    assert slug("N50 arealdekke Ås") == "n50-arealdekke-as"
    assert slug("Kommuneplan Bærum (EKSEMPEL)") == "kommuneplan-baerum-eksempel"
    assert slug("Ørland/Øvre 2024") == "orland-ovre-2024"
    made = upload(client, N50, kind="land_cover", name="N50 Ås", licence="CC BY 4.0 © Kartverket")
    cid = made.json()["layer_id"]
    twin = upload(client, N50, kind="land_cover", name="N50 ås")  # the same slug: gets its id
    twin_id = twin.json()["layer_id"]
    ids = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    assert ids == ["n50-as", f"n50-as-{twin_id}"]
    assert client.get("/ogc/collections/nowhere").status_code == 404
    page = _items(client, "n50-as", limit=10)
    etag = page.headers["etag"]
    assert etag.startswith('W/"')
    assert '/ogc/collections/n50-as/items?limit=10&offset=10>; rel="next"' in page.headers["link"]
    again = client.get(
        "/ogc/collections/n50-as/items", params={"limit": 10}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    other = _items(client, "n50-as", limit=11)
    assert other.headers["etag"] != etag
    item = client.get(f"/ogc/collections/{cid}/items/1")
    assert item.headers["etag"] and item.json()["links"][1]["href"].endswith("/n50-as")
    licence = [
        link
        for link in client.get("/ogc/collections/n50-as").json()["links"]
        if link["rel"] == "license"
    ]
    assert licence and licence[0]["href"] == "https://creativecommons.org/licenses/by/4.0/"


def test_html_pages_for_people(client: TestClient) -> None:
    """f=html (or a browser's Accept) gives pages: links as links, collections in a table,
    items on a map with the page's features and its paging links."""
    _publish(client)
    landing = client.get("/ogc", headers={"Accept": "text/html,application/xhtml+xml"})
    assert landing.headers["content-type"].startswith("text/html")
    assert 'href="http://testserver/ogc/collections"' in landing.text
    assert client.get("/ogc", params={"f": "json"}).json()["links"]
    listing = client.get("/ogc/collections", params={"f": "html"}).text
    assert "<td><code>n50-as</code></td>" in listing and "<script" not in listing
    one = client.get("/ogc/collections/n50-as", params={"f": "html"}).text
    assert "/ogc/collections/n50-as/items?f=html" in one
    page = client.get("/ogc/collections/n50-as/items", params={"f": "html", "limit": 25})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "25 av 1\u00a0286 objekter" in page.text  # Norwegian number format
    assert "Neste side" in page.text and "offset=25" in page.text
    assert "nonce-" in page.headers["content-security-policy"]
    assert page.text.count('"type": "Feature"') + page.text.count('"type":"Feature"') >= 25
    item = client.get("/ogc/collections/n50-as/items/3", params={"f": "html"})
    assert item.status_code == 200 and "objekt 3" in item.text
    assert client.get("/ogc", params={"f": "xml"}).status_code == 400


def test_gdal_reads_a_filtered_collection_with_private_reads(
    client: TestClient, settings: Any, n50_source: gpd.GeoDataFrame, tmp_path: Any
) -> None:
    """GDAL's OAPIF driver, as an analyst runs it against a service with private reads: HTTP
    Basic with the token as password, an attribute filter, every page followed."""
    from tests.conftest import authorize, running_server

    _publish(client)
    token = authorize(client, "viewer", user="analyst")
    log_file = tmp_path / "access.log"
    with (
        log_file.open("w") as log,
        running_server(settings, {"GEOSERVICE_PUBLIC_READS": "false"}, stdout=log) as (
            proc,
            base,
        ),
    ):
        assert httpx.get(f"{base}/ogc/collections/n50-as/items").status_code == 401
        script = (
            "import json, os, pyogrio\n"
            "os.environ['GDAL_HTTP_AUTH'] = 'BASIC'\n"
            f"os.environ['GDAL_HTTP_USERPWD'] = 'analyst:{token}'\n"
            f"f = pyogrio.read_dataframe('OAPIF:{base}/ogc', layer='n50-as',"
            " where='arealtype = 30')\n"
            "g = pyogrio.read_dataframe"
            f"('OAPIF:{base}/ogc', layer='n50-as')\n"
            "print(json.dumps({'forest': len(f), 'all': len(g),"
            " 'types': sorted(set(f.arealtype.astype(int).tolist()))}))"
        )
        out = gdal_client(script)
        proc.terminate()
        proc.wait(timeout=10)
        logged = log_file.read_text() + (proc.stderr.read().decode() if proc.stderr else "")
    # The filter went to the server (as a queryable property or CQL2), not applied on the client.
    assert "arealtype=30" in logged or "filter=" in logged, logged[-2000:]
    assert out["all"] == len(n50_source) == 1286
    assert out["forest"] == int((n50_source.klasse == 800).sum()) == 458
    assert out["types"] == [30]


def test_the_ogc_api_definition_lists_each_collections_filters(client: TestClient) -> None:
    """GDAL and QGIS read the landing page's service-desc to learn what each collection can
    be filtered on: every queryable is a parameter of that collection's items path."""
    from openapi_spec_validator import validate

    _publish(client)
    landing = client.get("/ogc").json()
    href = next(link["href"] for link in landing["links"] if link["rel"] == "service-desc")
    answer = client.get(href)
    assert answer.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = answer.json()
    validate(doc)
    assert doc["servers"] == [{"url": "http://testserver/ogc"}]
    items = doc["paths"]["/collections/n50-as/items"]["get"]["parameters"]
    by_name = {p["name"]: p for p in items}
    assert by_name["arealtype"]["schema"]["type"] == "integer"
    assert "cql-text" in by_name["filter-lang"]["schema"]["enum"]
    # GDAL sends the earlier draft's name: it is read as CQL2 text.
    old = _items(client, "n50-as", filter="arealtype = 30", **{"filter-lang": "cql-text"})
    assert old.json()["numberMatched"] == 458


QGIS_PYTHON = "/usr/bin/python3"


def _has_qgis() -> bool:
    try:
        done = subprocess.run(
            [QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.mark.qgis
@pytest.mark.skipif(not _has_qgis(), reason="python3-qgis is not installed (bootstrap test does)")
def test_qgis_loads_private_data(
    client: TestClient, settings: Any, n50_source: gpd.GeoDataFrame, tmp_path: Any
) -> None:
    """QGIS 3.22 (Debian's python3-qgis, headless) with private reads: loads the collection
    through ?access_token= and through HTTP Basic, every feature across pages, a filter the
    server applies (a queryable in the service URL; QGIS 3.22 evaluates subset strings itself)
    and the vector tiles painted."""
    from pathlib import Path

    from tests.conftest import authorize, running_server

    layer_id = _publish(client)
    token = authorize(client, "viewer", user="qgis")
    log_file = tmp_path / "access.log"
    client_script = Path(__file__).parent / "clients" / "qgis_client.py"
    env = {
        "QT_QPA_PLATFORM": "offscreen",
        "QGIS_AUTH_DB_DIR_PATH": str(tmp_path / "auth"),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "PATH": os.environ.get("PATH", ""),
    }
    (tmp_path / "auth").mkdir()
    with (
        log_file.open("w") as log,
        running_server(settings, {"GEOSERVICE_PUBLIC_READS": "false"}, stdout=log) as (
            proc,
            base,
        ),
    ):
        done = subprocess.run(
            [QGIS_PYTHON, str(client_script), base, token, "n50-as", str(layer_id)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        proc.terminate()
        proc.wait(timeout=10)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    logged = log_file.read_text()
    assert out["token_valid"] and out["basic_valid"] and out["tiles_valid"], out
    assert out["token_count"] == out["basic_count"] == len(n50_source) == 1286, out
    assert out["filtered_count"] == out["server_filtered_count"] == 458, out
    assert "arealtype=30" in logged  # the server did the filtering, not QGIS
    assert out["painted_pixels"] > 1000, out
    assert "/tiles/1/" in logged or f"/tiles/{layer_id}/" in logged


def test_big_layers_index_the_attribute_filters_use(
    client: TestClient, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layer past the size threshold gets a btree on arealtype as the filters write it, and
    PostgreSQL answers a CQL2 filter's count from that index."""
    import psycopg

    from layers import ingest

    monkeypatch.setattr(ingest, "FILTER_INDEX_MIN_FEATURES", 10)
    frame = gpd.GeoDataFrame(
        {"ARTYPE": [30] * 12 + [60] * 8},
        geometry=[box(262000 + 20 * i, 6620000, 262010 + 20 * i, 6620010) for i in range(20)],
        crs=25833,
    )
    frame.to_file(tmp_path / "ar5.gpkg")
    made = upload(client, tmp_path / "ar5.gpkg", kind="land_cover", name="Indeksert")
    assert made.status_code == 201, made.text
    version = made.json()["version_id"]
    with psycopg.connect(database_url) as conn:
        indexes = [
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (f"feature_v{version}",)
            )
        ]
        assert any("arealtype" in d and "COALESCE" in d for d in indexes), indexes
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT count(*) FROM geoservice.feature WHERE version_id = %s AND "
                "CAST(coalesce(attrs ->> 'arealtype', props ->> 'arealtype') AS integer) = 60",
                (version,),
            )
        )
    assert "arealtype" in plan and "Index" in plan, plan
    slug = client.get(f"/ogc/collections/{made.json()['layer_id']}").json()["id"]
    from layers.features import MATCHED

    kept = len(MATCHED._counts)
    for offset in (0, 5):  # paging with one filter: counted once, the same on every page
        items = client.get(
            f"/ogc/collections/{slug}/items",
            params={"filter": "arealtype = 60", "limit": 5, "offset": offset},
        )
        assert items.status_code == 200 and items.json()["numberMatched"] == 8
    assert len(MATCHED._counts) == kept + 1
    other = client.get(f"/ogc/collections/{slug}/items", params={"filter": "arealtype = 30"})
    assert other.json()["numberMatched"] == 12
