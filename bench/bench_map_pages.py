"""Page weight and time to first render of every map page, with the demo data, in Chromium.

Page weight = the HTML plus everything it loads (Leaflet, tiles); first render = the
browser's first-contentful-paint; 'settled' = network idle (all tiles drawn). The basemap is
'none' so only our own bytes are counted.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from bench.common import throwaway_postgis
from bench.servers import OUR_CMD, http_server, our_env
from geoservice.database import create_db_engine
from geoservice.demo import (
    DEMO_LAYERS,
    load_demo,
    load_demo_plan_analysis,
    load_demo_proposals,
    load_demo_restoration,
)
from geoservice.settings import Settings

RUNS = 5


def run() -> list[dict[str, Any]]:
    """Median of RUNS loads of each map page."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is not installed (bash scripts/bootstrap.sh bench does it)")
    rows: list[dict[str, Any]] = []
    with throwaway_postgis() as url, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=url, migrate_on_start=False)
        engine = create_db_engine(url, settings)
        quiet = lambda _: None  # noqa: E731
        ids = load_demo(engine, settings, say=quiet)
        by_name = {item.name: lid for item, lid in zip(DEMO_LAYERS, ids, strict=True)}
        load_demo_restoration(engine, settings, say=quiet)
        proposal = load_demo_proposals(engine, settings, say=quiet)[0]
        plan = by_name["Kommuneplan Ås (EKSEMPEL)"]
        load_demo_plan_analysis(engine, plan, say=quiet)
        engine.dispose()
        pages = {
            "layer: kommuner (357, inline)": f"/maps/layers/{by_name['Kommuner 2024']}",
            "layer: N50 Ås (1 286, inline)": f"/maps/layers/{by_name['N50 arealdekke Ås']}",
            "layer: naturtyper (2 079, inline)": (
                f"/maps/layers/{by_name['Naturtyper NiN Follo (utvalg)']}"
            ),
            "proposal (3 footprints)": f"/maps/proposals/{proposal}",
            "plan": f"/maps/plans/{plan}",
            "restoration (10 years)": "/maps/restoration",
        }
        env = our_env(url, Path(tmp) / "data", map_basemap="none")
        tiles_env = our_env(
            url, Path(tmp) / "data2", map_basemap="none", map_inline_feature_limit="1000"
        )
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for label, server_env, chosen in (
                ("", env, pages),
                (" (tiles)", tiles_env, {k: v for k, v in pages.items() if "N50" in k}),
            ):
                with http_server(OUR_CMD, server_env, "/healthz") as base:
                    for name, path in chosen.items():
                        samples = [_load(browser, base + path) for _ in range(RUNS)]
                        samples.sort(key=lambda s: s["settled_ms"])
                        mid = samples[RUNS // 2]
                        rows.append(
                            {
                                "bench": "map pages",
                                "case": name.replace("inline", "tiles") if label else name,
                                **mid,
                            }
                        )
            browser.close()
    return rows


def _load(browser: Any, url: str) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    sizes: list[int] = []
    page.on("requestfinished", lambda r: sizes.append(r.sizes()["responseBodySize"]))
    t0 = time.perf_counter()
    page.goto(url, wait_until="networkidle")
    settled = (time.perf_counter() - t0) * 1000
    fcp = page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
    )
    html_kb = page.evaluate("() => document.documentElement.outerHTML.length") / 1024
    page.close()
    return {
        "html_kb": round(html_kb, 1),
        "page_weight_kb": round(sum(sizes) / 1024, 1),
        "requests": len(sizes),
        "first_paint_ms": round(fcp or 0, 1),
        "settled_ms": round(settled, 1),
    }
