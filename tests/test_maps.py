"""Map pages as HTML: local assets, CSP, basemap choice, GeoJSON budget, numbers in the data."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from typer.testing import CliRunner

from analyses.restoration import progress, shares_by_region_over
from geoservice.app import create_app
from geoservice.cli import app as cli
from geoservice.database import create_db_engine
from geoservice.settings import Settings
from maps.styles import class_colour, nice_breaks
from tests.conftest import authorize
from tests.test_carbon import FOREST, assess, landscape, utm  # noqa: F401
from tests.test_layers import KOMMUNER, upload
from tests.test_restoration import BASELINE, X0, Y0, project
from tests.test_restoration import baseline as baseline

SCRIPT_TAG = re.compile(r"<script([^>]*)>")


def generic_layer(client: TestClient, tmp_path: Path, n: int = 3, text: str = "ok") -> int:
    tmp_path.mkdir(parents=True, exist_ok=True)
    frame = gpd.GeoDataFrame(
        {"navn": [text] * n},
        geometry=[box(X0 + i * 200, Y0, X0 + i * 200 + 100, Y0 + 100) for i in range(n)],
        crs=25833,
    )
    frame.to_file(tmp_path / "generic.gpkg")
    response = upload(client, tmp_path / "generic.gpkg", kind="generic", name="Generisk")
    assert response.status_code == 201, response.text
    return int(response.json()["layer_id"])


def test_layer_page_is_local_with_a_nonce_csp(client: TestClient, tmp_path: Path) -> None:
    layer = generic_layer(client, tmp_path)
    page = client.get(f"/maps/layers/{layer}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and "default-src 'none'" in csp and "unsafe-inline" not in csp.split(";")[1]
    for attrs in SCRIPT_TAG.findall(html):  # every script is local or carries the nonce
        assert 'src="/static/vendor/' in attrs or f'nonce="{nonce.group(1)}"' in attrs
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html), (
        "nothing may load from the internet"
    )
    # settings default: Kartverket's topographic cache, and the CSP lets its tiles in
    assert "cache.kartverket.no" in html and "https://cache.kartverket.no" in csp
    leaflet = client.get("/static/vendor/leaflet/dist/leaflet.js")
    assert leaflet.status_code == 200 and b"Leaflet 1.9.4" in leaflet.content
    assert client.get("/maps/layers/999").status_code == 404


def test_basemap_none_and_custom(settings: Settings, tmp_path: Path) -> None:
    for basemap, present, absent in (
        ("none", None, "kartverket"),
        ("https://tiles.example.no/{z}/{x}/{y}.png", "https://tiles.example.no", "kartverket"),
    ):
        custom = settings.model_copy(update={"map_basemap": basemap})
        with TestClient(create_app(custom)) as client:
            authorize(client)
            layer = generic_layer(client, tmp_path / basemap[:4])
            page = client.get(f"/maps/layers/{layer}")
            assert absent not in page.text
            if present:
                assert present in page.headers["content-security-policy"]
            else:
                assert "img-src 'self' data:;" in page.headers["content-security-policy"]
    with pytest.raises(ValueError, match="tile URL template"):
        Settings(map_basemap="osm")


def test_big_layers_come_from_tiles_and_pages_stay_under_budget(
    settings: Settings, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"map_inline_feature_limit": 2})
    with TestClient(create_app(small)) as client:
        token = authorize(client)
        layer = generic_layer(client, tmp_path, n=3)
        html = client.get(f"/maps/layers/{layer}").text
        assert f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf?version=1" in html
        assert "L.canvas.tile" in html and '"features"' in html
        # a page opened with ?access_token= (private reads) hands it on to its tiles
        client.headers.pop("Authorization")
        opened = client.get(f"/maps/layers/{layer}", params={"access_token": token}).text
        assert f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf?version=1&access_token={token}'" in opened
    tight = settings.model_copy(update={"map_max_inline_mb": 0.0005})  # 500 bytes
    with TestClient(create_app(tight)) as client:
        authorize(client)
        layer = generic_layer(client, tmp_path / "b", n=3)
        html = client.get(f"/maps/layers/{layer}").text
        assert "/tiles/" in html  # over the byte budget: tiles, even under the count
        assert "geo_json_" not in html


def test_missing_map_libraries_answer_503_with_the_fix(settings: Settings, tmp_path: Path) -> None:
    broken = settings.model_copy(update={"map_assets_dir": tmp_path / "nowhere"})
    with TestClient(create_app(broken)) as client:
        authorize(client)
        layer = generic_layer(client, tmp_path)
        response = client.get(f"/maps/layers/{layer}")
    assert response.status_code == 503
    assert "npm ci" in response.json()["detail"]


def test_proposal_map_shows_the_assessed_numbers(client: TestClient, landscape: None) -> None:  # noqa: F811
    result = assess(client, utm(FOREST), built_share=1.0, name="<b>Skogfelt</b>")
    html = client.get(f"/maps/proposals/{result['id']}").text
    stock = result["footprints"][0]["stock_t_c"]["central"]
    assert f"{stock:,.0f}".replace(",", "\u202f") + " t C" in html
    assert "&lt;b&gt;Skogfelt&lt;/b&gt;" in html and "<b>Skogfelt</b>" not in html
    # the forest square's density (t C/ha of bonitet 14, all pools) is in its popup data
    density = next(c for c in result["footprints"][0]["classes"] if c["arealtype"] == 30)[
        "stock_t_c"
    ]["total"]["central"]
    assert f'"t_c_per_ha": {round(density, 1)}' in html
    assert client.get("/maps/proposals/999").status_code == 404


def test_restoration_shares_match_progress_per_region(
    client: TestClient, baseline: None, settings: Settings
) -> None:
    assert upload(client, KOMMUNER, kind="boundaries", name="kommuner").status_code == 201
    half = box(X0 + 50, Y0, X0 + 150, Y0 + 100)  # half inside the 1 ha baseline square
    assert project(client, BASELINE, ("initiated", "2024-01-01")).status_code == 201
    assert (
        project(client, half, ("planned", "2023-01-01"), ("ongoing", "2025-03-01")).status_code
        == 201
    )
    engine = create_db_engine(str(settings.database_url), settings)
    try:
        for when, restored in (
            (date(2023, 12, 31), 0.0),
            (date(2024, 12, 31), 1.0),
            (date(2025, 12, 31), 1.0),
        ):
            fc = shares_by_region_over(engine, level="kommune", dates=[when])[when.isoformat()]
            (aas,) = fc["features"]
            assert aas["properties"]["code"] == "3218" and aas["properties"]["name"] == "Ås"
            assert aas["properties"]["baseline_degraded_ha"] == pytest.approx(2.0)
            assert aas["properties"]["under_restoration_ha"] == pytest.approx(restored)
            p = progress(engine, region="3218", as_of=when)
            assert p["under_restoration_ha"] == pytest.approx(restored)
            assert aas["properties"]["share_percent"] == pytest.approx(100 * p["share"], abs=0.01)
    finally:
        engine.dispose()
    html = client.get("/maps/restoration", params={"as_of": "2025-06-01"}).text
    assert "Andel per kommune 2025-06-01" in html and "Andel per kommune 2024-12-31" in html
    assert "30 % innen 2030" in html


def test_classes_and_colours() -> None:
    assert nice_breaks([1, 2, 3, 4, 100]) == [1.0, 2.0, 3.0, 4.0, 100.0]
    assert nice_breaks([0.0, 1234.0, 987.0]) == [0.0, 990.0, 1300.0]
    assert nice_breaks([]) == []
    ramp = ("#a", "#b", "#c")
    assert class_colour(5, [10, 20, 30], ramp) == "#a"
    assert class_colour(25, [10, 20, 30], ramp) == "#c"
    assert class_colour(None, [10], ramp) == "#eeeeee"


def test_cli_writes_standalone_maps(
    client: TestClient,
    landscape: None,  # noqa: F811
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = assess(client, utm(FOREST), built_share=1.0)
    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("GEOSERVICE_DATA_DIR", str(settings.data_dir))
    out = tmp_path / "forslag.html"
    run = CliRunner().invoke(cli, ["map", "proposal", str(result["id"]), "--out", str(out)])
    assert run.exit_code == 0, run.output
    html = out.read_text()
    assert "Leaflet 1.9.4" in html and "/static/vendor" not in html
    assert "data:image/png;base64," in html  # leaflet.css images embedded too
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html)
    missing = CliRunner().invoke(cli, ["map", "proposal", "999", "--out", str(out)])
    assert missing.exit_code == 1 and "no proposal 999" in missing.output
