"""The workbench in headless Chromium (Debian's package, driven by Playwright): a planner
signs in, draws a site with Leaflet.draw's rectangle tool and gets the result; a GIS officer
sees a refusal next to the field and then a success with the progress bar. Every page loads
without console errors, asks nothing of another host, and passes axe-core (served by the
service) with no serious or critical violation. Screenshots land in ``test-artifacts/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from playwright.sync_api import Page
from shapely.geometry import box

from geoservice import access
from geoservice.database import create_db_engine
from geoservice.settings import Settings
from tests.test_carbon import BUILT, FIELD, FOREST, MIRE
from tests.test_maps_browser import ARTIFACTS, CHROMIUM, browser, local_only  # noqa: F401

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (bash scripts/bootstrap.sh test does it)"
)

AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""


@pytest.fixture
def tokens(settings: Settings, tmp_path: Path) -> dict[str, str]:
    engine = create_db_engine(str(settings.database_url), settings)
    try:
        made = {}
        for role in ("planner", "gis", "ecologist"):
            access.add_user(engine, f"kari-{role}")
            made[role] = access.create_token(engine, f"kari-{role}", role)[1]
        # land cover under the site the planner draws
        cover = gpd.GeoDataFrame(
            {"ARTYPE": [30, 11, 21, 60], "ARSKOGBON": [14, 98, 98, 98]},
            geometry=[FOREST, BUILT, FIELD, MIRE],
            crs=25833,
        )
        cover.to_file(tmp_path / "cover.gpkg")
        from layers.ingest import ImportOptions, import_file

        import_file(
            engine,
            tmp_path / "cover.gpkg",
            ImportOptions(kind="land_cover", name="AR5"),
            storage_srid=25833,
        )
        degraded = gpd.GeoDataFrame(
            {"okosystem": ["wetland"], "basisaar": [2020]}, geometry=[MIRE], crs=25833
        )
        degraded.to_file(tmp_path / "degraded.gpkg")
        import_file(
            engine,
            tmp_path / "degraded.gpkg",
            ImportOptions(kind="degraded_areas", name="Forringet myr"),
            storage_srid=25833,
        )
        return made
    finally:
        engine.dispose()


def watch(page: Page) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status == 404 else None,
    )
    return errors, requests


def check_page(page: Page, base: str, shot: str) -> None:
    """axe-core from the service's own copy, and a screenshot."""
    page.add_script_tag(url=f"{base}/static/vendor/axe-core/axe.min.js")
    serious = page.evaluate(AXE)
    assert serious == [], f"{shot}: {serious}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{shot}.png"), full_page=True)


def centre_map(page: Page, shape: Any, zoom: int) -> None:
    """Centre the drawing map on a shape (EPSG:25833)."""
    centre = gpd.GeoSeries([shape.centroid], crs=25833).to_crs(4326).iloc[0]
    page.evaluate(f"window.geoserviceDrawMap.setView([{centre.y}, {centre.x}], {zoom})")
    page.wait_for_timeout(300)


def drag_rectangle(page: Page, half_width: int, half_height: int) -> None:
    """Draw a rectangle round the map's centre with Leaflet.draw's tool, as a user drags."""
    page.click(".leaflet-draw-draw-rectangle")
    area = page.locator("#draw-map").bounding_box()
    assert area is not None
    cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    page.mouse.move(cx - half_width, cy - half_height)
    page.mouse.down()
    page.mouse.move(cx + half_width, cy + half_height, steps=8)
    page.mouse.up()


def sign_in(page: Page, base: str, token: str) -> None:
    page.goto(f"{base}/logg-inn")
    check_page(page, base, "logg-inn")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_planner_draws_a_site_and_gets_the_result(
    browser: Any,  # noqa: F811
    tokens: dict[str, str],
    live_server: str,
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, requests = watch(page)
    sign_in(page, live_server, tokens["planner"])
    assert "Velkommen, kari-planner" in page.inner_text("h1")
    check_page(page, live_server, "forside")
    page.click("text=Ny vurdering")
    page.wait_for_selector(".leaflet-draw-draw-rectangle")
    # centre the map on the forest square, then drag a rectangle over it with the draw tool
    centre_map(page, FOREST, 17)
    check_page(page, live_server, "ny-vurdering")
    drag_rectangle(page, 60, 60)
    drawn = json.loads(page.input_value("#footprint"))
    assert len(drawn["features"]) == 1 and "1" in page.inner_text("#drawn")
    page.fill("#name", "Tegnet tomt")
    page.select_option("#arealformal", "1110")
    page.click("#proposal-form button[type=submit]")
    page.wait_for_url(f"{live_server}/vurderinger/*")
    assert "Tegnet tomt" in page.inner_text("h1")
    emission = page.inner_text("#emission")
    assert emission.replace("\u00a0", "").isdigit() and int(emission.replace("\u00a0", "")) > 0
    check_page(page, live_server, "resultat")
    # the report as the browser downloads it, with the session
    href = page.get_attribute("a:text('PDF')", "href")
    assert href is not None
    pdf = page.request.get(f"{live_server}{href}")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body()[:5] == b"%PDF-"
    (ARTIFACTS / "web-rapport.pdf").write_bytes(pdf.body())
    page.click("header >> text=Vurderinger")
    assert "Tegnet tomt" in page.inner_text("table")
    check_page(page, live_server, "vurderinger")
    assert errors == [], errors
    assert local_only(requests)


def test_gis_officer_sees_a_refusal_then_a_success(
    browser: Any,  # noqa: F811
    tokens: dict[str, str],
    live_server: str,
    tmp_path: Path,
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, requests = watch(page)
    sign_in(page, live_server, tokens["gis"])
    page.click("header >> text=Kartlag")
    check_page(page, live_server, "kartlag")
    # degrees labelled as UTM 33: refused, the message next to the CRS field
    frame = gpd.GeoDataFrame(
        {"ARTYPE": [30]}, geometry=[box(262000, 6620000, 262100, 6620100)], crs=25833
    )
    frame.to_crs(4326).to_file(tmp_path / "ar5.geojson")
    page.set_input_files("#up-file", str(tmp_path / "ar5.geojson"))
    page.select_option("#up-kind", "land_cover")
    page.fill("#up-name", "AR5 test")
    page.fill("#up-crs", "EPSG:25833")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#err-crs:not([hidden])")
    assert "EPSG:4326" in page.inner_text("#err-crs")
    assert page.get_attribute("#up-crs", "aria-invalid") == "true"
    check_page(page, live_server, "kartlag-avvist")
    page.fill("#up-crs", "")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#up-status a")
    assert "Publisert: AR5 test v1 (1 objekter)" in page.inner_text("#up-status")
    assert page.get_attribute("#up-progress", "value") == "100"
    page.click("#up-status a")
    assert "ar5.geojson" in page.inner_text("table")
    check_page(page, live_server, "kartlag-versjoner")
    # the browser logs the refused upload's 422; nothing else went wrong
    refused = [e for e in errors if "status of 422" in e]
    assert len(refused) == 1 and [e for e in errors if e not in refused] == [], errors
    assert local_only(requests)


def test_ecologist_adds_a_project_and_sees_the_dashboard_change(
    browser: Any,  # noqa: F811
    tokens: dict[str, str],
    live_server: str,
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, requests = watch(page)
    sign_in(page, live_server, tokens["ecologist"])
    page.click("header >> text=Restaurering")
    assert page.inner_text("#restored").startswith("0,0")
    check_page(page, live_server, "restaurering")
    page.click("text=Nytt prosjekt")
    page.wait_for_selector(".leaflet-draw-draw-rectangle")
    centre_map(page, MIRE, 16)
    page.fill("#name", "Tetting av grøfter på Åsmyra")
    page.fill("#date", "2024-05-01")
    check_page(page, live_server, "nytt-prosjekt")
    drag_rectangle(page, 80, 30)
    page.click("#project-form button[type=submit]")
    page.wait_for_url(f"{live_server}/restaurering*")
    restored = float(page.inner_text("#restored").split()[0].replace(",", "."))
    assert restored > 0
    assert "Tetting av grøfter på Åsmyra" in page.inner_text("table:last-of-type")
    assert page.locator("svg line.target").count() == 2
    check_page(page, live_server, "restaurering-etter")
    assert errors == [], errors
    assert local_only(requests)
