"""Every map page in headless Chromium (Debian's package, driven by Playwright).

Each page must load without JavaScript errors, fetch nothing from outside the machine (the
basemap is 'none'), draw the expected features or fetch its tiles, and show its legend.
Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, sync_playwright

from analyses.density import proposal_map_data
from analyses.jobs import latest_result
from analyses.restoration import projects_geojson, shares_by_region_over
from geoservice.database import create_db_engine
from geoservice.demo import (
    DEMO_LAYERS,
    load_demo,
    load_demo_plan_analysis,
    load_demo_proposals,
    load_demo_restoration,
)
from geoservice.settings import Settings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INLINE_LIMIT = 1000  # N50 Ås (1 286) and the nature types (2 079) then come as tiles

COUNT_FEATURES = """() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  let n = 0;
  map.eachLayer(l => { if (l.feature) n++; });
  return n;
}"""

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (bash scripts/bootstrap.sh test does it)"
)


@pytest.fixture
def live_server_env() -> dict[str, str]:
    return {"GEOSERVICE_MAP_INLINE_FEATURE_LIMIT": str(INLINE_LIMIT)}


@pytest.fixture
def demo(database_url: str, settings: Settings) -> Iterator[dict[str, Any]]:
    engine = create_db_engine(database_url, settings)
    quiet = lambda _: None  # noqa: E731
    layer_ids = load_demo(engine, settings, say=quiet)
    by_name = {item.name: lid for item, lid in zip(DEMO_LAYERS, layer_ids, strict=True)}
    load_demo_restoration(engine, settings, say=quiet)
    proposals = load_demo_proposals(engine, settings, say=quiet)
    plan = by_name["Kommuneplan Ås (EKSEMPEL)"]
    load_demo_plan_analysis(engine, plan, say=quiet)
    try:
        yield {"engine": engine, "layers": by_name, "proposals": proposals, "plan": plan}
    finally:
        engine.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def visit(browser: Any, url: str, shot: str) -> tuple[Page, list[str], list[str]]:
    """Open a page; return it, its JS errors and every URL it requested."""
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
    return page, errors, requests


def local_only(requests: list[str]) -> bool:
    return all(
        urlsplit(u).hostname in ("127.0.0.1", "localhost")
        for u in requests
        if "://" in u and not u.startswith("data:")
    )


def test_every_map_renders_offline(
    browser: Any, demo: dict[str, Any], live_server: str, settings: Settings
) -> None:
    engine = demo["engine"]
    kommuner = demo["layers"]["Kommuner 2024"]
    page, errors, requests = visit(
        browser, f"{live_server}/maps/layers/{kommuner}", "layer-kommuner"
    )
    assert errors == [] and local_only(requests)
    assert page.evaluate(COUNT_FEATURES) == 357
    assert "Grense" in page.inner_text("#gs-legend")

    n50 = demo["layers"]["N50 arealdekke Ås"]
    page, errors, requests = visit(browser, f"{live_server}/maps/layers/{n50}", "layer-n50-tiles")
    tiles = [u for u in requests if f"/tiles/{n50}/" in u]
    assert errors == [] and local_only(requests)
    assert tiles and all("version=1" in u for u in tiles)
    assert page.evaluate(COUNT_FEATURES) == 0  # drawn on canvas tiles, not as GeoJSON
    legend = page.inner_text("#gs-legend")
    assert "Skog" in legend and "Myr" in legend and "Fulldyrka jord" in legend

    pid = demo["proposals"][0]
    data = proposal_map_data(engine, pid, settings.storage_srid)
    page, errors, requests = visit(browser, f"{live_server}/maps/proposals/{pid}", "proposal")
    assert errors == [] and local_only(requests)
    expected = (
        len(data["land"]["features"])
        + len(data["footprints"])
        + len(data["nature_overlaps"]["features"])
    )
    assert page.evaluate(COUNT_FEATURES) == expected
    control = page.inner_text(".leaflet-control-layers")
    assert "Fotavtrykk: Forslaget" in control and "Alternativ: Alternativ Åkerlia" in control
    assert "t C/ha" in page.inner_text("#gs-legend")
    assert "Minst tap" in page.inner_text("#gs-panel")

    plan = demo["plan"]
    result = latest_result(engine, plan)
    assert result is not None
    page, errors, requests = visit(browser, f"{live_server}/maps/plans/{plan}", "plan")
    assert errors == [] and local_only(requests)
    zones, rezoned = len(result["zones"]), len(result["rezoning"]["zones"])
    assert rezoned == 1 and page.evaluate(COUNT_FEATURES) == zones + rezoned
    assert "t CO2e" in page.inner_text("#gs-legend")

    page, errors, requests = visit(browser, f"{live_server}/maps/restoration", "restoration")
    assert errors == [] and local_only(requests)
    from datetime import date

    regions = shares_by_region_over(engine, level="kommune", dates=[date.today()])[
        date.today().isoformat()
    ]["features"]
    projects = projects_geojson(engine, as_of=date.today())["features"]
    assert regions and page.evaluate(COUNT_FEATURES) == len(regions) + len(projects)
    assert "30 %" in page.inner_text("#gs-legend")
    # the as-of control: choosing an earlier year swaps the choropleth layer
    page.get_by_text("Andel per kommune 2018-12-31").click()
    assert page.evaluate(COUNT_FEATURES) == len(projects) + len(
        shares_by_region_over(engine, level="kommune", dates=[date(2018, 12, 31)])["2018-12-31"][
            "features"
        ]
    )


def test_script_in_a_property_does_not_run(
    browser: Any, live_server: str, tmp_path: Path, client: Any
) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    from tests.test_layers import upload

    evil = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    frame = gpd.GeoDataFrame(
        {"navn": [evil]}, geometry=[box(262_000, 6_620_000, 262_100, 6_620_100)], crs=25833
    )
    frame.to_file(tmp_path / "evil.gpkg")
    response = upload(client, tmp_path / "evil.gpkg", kind="generic", name="<b>ond</b>")
    layer = response.json()["layer_id"]
    page, errors, _ = visit(browser, f"{live_server}/maps/layers/{layer}", "xss")
    page.evaluate(
        """() => {
      const map = Object.values(window).find(v => v instanceof L.Map);
      map.eachLayer(l => {
        if (l.feature) l.fire('click', {latlng: l.getBounds().getCenter()}, true);
      });
    }"""
    )
    page.wait_for_timeout(300)
    popup = page.inner_text(".leaflet-popup-content")
    assert "<script>window.__xss = 1</script>" in popup  # shown as text
    assert page.evaluate("() => window.__xss") is None
    assert "<b>ond</b>" in page.inner_text(".leaflet-control-layers")
    assert errors == []


def test_report_renders_in_chromium_in_bokmal(
    browser: Any, live_server: str, client: Any, tmp_path: Path
) -> None:
    """The case-file report in a real browser: no console errors, nothing fetched from
    elsewhere, the Norwegian labels and number format as a reader sees them, the map drawn
    with its scale bar and north arrow."""
    import geopandas as gpd

    from core.i18n import number
    from tests.test_carbon import FOREST, MIRE, assess, utm
    from tests.test_layers import upload

    cover = gpd.GeoDataFrame(
        {"ARTYPE": [30, 60], "ARSKOGBON": [14, 98]}, geometry=[FOREST, MIRE], crs=25833
    )
    cover.to_file(tmp_path / "ar5.gpkg")
    assert upload(client, tmp_path / "ar5.gpkg", kind="land_cover", name="AR5").status_code == 201
    result = assess(
        client, utm(FOREST), built_share=1.0, name="Skolen på Ås", alternatives={"Myra": utm(MIRE)}
    )
    page, errors, requests = visit(
        browser,
        f"{live_server}/api/proposals/{result['id']}/report?saksnummer=2026%2F12",
        "report-nb",
    )
    assert errors == [] and local_only(requests)
    text = page.inner_text("body")
    assert "Karbonvurdering: Skolen på Ås" in text and "2026/12" in text
    assert "Utslipp ved utbygging, 20 år (t CO2e)" in text
    mire = result["footprints"][1]["emission_t_co2e"]["central"]
    assert number(mire) in text and "10,0 daa" in text
    assert page.locator("svg .scale-bar").count() == 1
    assert page.locator("svg .north-arrow").count() == 1
    box = page.locator("svg").first.bounding_box()
    assert box is not None and box["width"] > 300  # the map is drawn at a readable size
    pdf = page.get_by_text("Last ned som PDF")
    assert pdf.get_attribute("href", timeout=1000).endswith("/report.pdf?saksnummer=2026%2F12")


def test_ogc_items_page_in_chromium(browser: Any, live_server: str, client: Any) -> None:
    """The OGC items page a person opens (f=html): the page's features on the offline map,
    no script errors, nothing fetched from elsewhere, the next page one click away."""
    from tests.test_layers import N50, upload

    assert upload(client, N50, kind="land_cover", name="N50 Ås").status_code == 201
    page, errors, requests = visit(
        browser, f"{live_server}/ogc/collections/n50-as/items?f=html&limit=40", "ogc-items"
    )
    assert errors == [] and local_only(requests)
    assert page.evaluate(COUNT_FEATURES) == 40
    assert "40 av 1\u00a0286 objekter" in page.inner_text("#gs-panel")
    page.get_by_text("Neste side").click()
    page.wait_for_load_state("networkidle")
    assert "offset=40" in page.url and page.evaluate(COUNT_FEATURES) == 40
