"""The workbench through the app: sign-in with a token turned into a session cookie, CSRF on
every write, a planner's assessment from a drawn site, rename / delete / restore, GIS uploads
with the cookie, sign-out revoking the session. (The browser tests are in test_web_browser.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from geoservice import access
from geoservice.app import create_app
from geoservice.settings import Settings
from tests.test_carbon import FOREST, landscape  # noqa: F401
from tests.test_land_account import plans  # noqa: F401


def token_for(client: TestClient, role: str) -> str:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    name = f"web-{role}"
    if not any(t["user"] == name for t in access.list_tokens(engine)):
        access.add_user(engine, name)
    return access.create_token(engine, name, role)[1]


def sign_in(client: TestClient, token: str) -> str:
    """Sign in through the form; returns the session's CSRF token from the home page."""
    form = client.get("/logg-inn")
    assert form.status_code == 200
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert login_csrf
    done = client.post(
        "/logg-inn",
        data={"token": token, "login_csrf": login_csrf.group(1), "neste": "/"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    cookie = done.headers["set-cookie"]
    assert "gs_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    home = client.get("/")
    assert home.status_code == 200
    found = re.search(r"csrf=([0-9a-f]{40})", home.text)
    assert found
    return found.group(1)


@pytest.fixture
def browser(settings: Settings) -> Any:
    """A client with no Authorization header: only what the browser would send."""
    with TestClient(create_app(settings)) as client:
        yield client


def test_sign_in_csrf_and_sign_out(browser: TestClient) -> None:
    assert browser.get("/", follow_redirects=False).headers["location"].startswith("/logg-inn")
    bad = browser.get("/logg-inn")
    csrf_field = re.search(r'name="login_csrf" value="([^"]+)"', bad.text)
    assert csrf_field
    refused = browser.post(
        "/logg-inn", data={"token": "gs_nope", "login_csrf": csrf_field.group(1)}
    )
    assert refused.status_code == 401 and "ukjent, utløpt eller trukket tilbake" in refused.text
    # a sign-in form posted from elsewhere (no login cookie) is refused
    forged = TestClient(browser.app).post("/logg-inn", data={"token": "x", "login_csrf": "y"})
    assert forged.status_code == 403
    planner = token_for(browser, "planner")
    csrf = sign_in(browser, planner)
    home = browser.get("/")
    assert "Velkommen, web-planner" in home.text and "Ny vurdering" in home.text
    assert "default-src 'none'; script-src 'self'" in home.headers["content-security-policy"]
    english = browser.get("/?lang=en")
    assert "Welcome, web-planner" in english.text
    # a write without the CSRF token is refused before anything happens
    no_csrf = browser.post("/vurderinger/1/slett", follow_redirects=False)
    assert no_csrf.status_code == 403 and no_csrf.json()["error"] == "csrf"
    # the API answers the session too, and refuses its writes without the CSRF header
    assert browser.get("/api/proposals").status_code == 200
    assert browser.patch("/api/proposals/1", json={"name": "x"}).status_code == 403
    out = browser.post(f"/logg-ut?csrf={csrf}", follow_redirects=False)
    assert out.status_code == 303
    # the session token is revoked, not only forgotten by this browser
    engine = browser.app.state.engine  # type: ignore[attr-defined]
    sessions = [t for t in access.list_tokens(engine) if t["user"] == "web-planner"]
    assert sum(1 for t in sessions if t["revoked_at"] is not None) == 1
    assert browser.get("/", follow_redirects=False).status_code == 303


def test_planner_draws_a_site_and_manages_assessments(
    browser: TestClient,
    landscape: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    csrf = sign_in(browser, token_for(browser, "planner"))
    form = browser.get("/vurderinger/ny")
    assert form.status_code == 200
    assert "/static/vendor/leaflet-draw/dist/leaflet.draw.js" in form.text
    drawn = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": _lonlat(FOREST)}],
    }
    empty = browser.post(
        f"/vurderinger/ny?csrf={csrf}",
        data={"name": "Skogtomta", "arealformal": "1110", "footprint": ""},
    )
    assert empty.status_code == 422
    assert 'id="footprint-error"' in empty.text and "Tegn byggeområdet" in empty.text
    assert 'value="Skogtomta"' in empty.text  # what was typed is kept
    # an alternative on the field next door, in a file in UTM 33 (the drawn site is lon/lat)
    field = box(262_400, 6_620_000, 262_500, 6_620_100)
    gpd.GeoDataFrame({"navn": ["Åkerlia"]}, geometry=[field], crs=25833).to_file(
        tmp_path / "alt.gpkg"
    )
    made = browser.post(
        f"/vurderinger/ny?csrf={csrf}",
        files={"alternativer": ("alt.gpkg", (tmp_path / "alt.gpkg").read_bytes())},
        data={
            "name": "Skogtomta",
            "arealformal": "1110",
            "built_share": "100",
            "preset": "miljodirektoratet-20y",
            "peat_handling": "drained",
            "footprint": json.dumps(drawn),
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    page = browser.get(made.headers["location"])
    # 1 ha of forest (bonitet høy, 232 t C) built over entirely
    assert "Skogtomta" in page.text and "10,0 daa" in page.text
    assert 'id="comparison"' in page.text and "Åkerlia" in page.text
    # the site from a file instead of a drawing
    gpd.GeoDataFrame({"navn": ["Fra fil"]}, geometry=[FOREST], crs=25833).to_file(
        tmp_path / "site.gpkg"
    )
    from_file = browser.post(
        f"/vurderinger/ny?csrf={csrf}",
        files={"fil": ("site.gpkg", (tmp_path / "site.gpkg").read_bytes())},
        data={"name": "Filtomta", "arealformal": "1110", "built_share": "100"},
    )
    assert from_file.status_code == 200 and "Filtomta" in from_file.text
    assert "10,0 daa" in from_file.text
    proposal_id = int(made.headers["location"].rsplit("/", 1)[1])
    listed = browser.get("/vurderinger?q=Skog")
    assert f'href="/vurderinger/{proposal_id}"' in listed.text
    renamed = browser.post(f"/vurderinger/{proposal_id}/navn?csrf={csrf}", data={"name": "Tomt B"})
    assert renamed.status_code == 200 and "Tomt B" in renamed.text
    browser.post(f"/vurderinger/{proposal_id}/slett?csrf={csrf}")
    assert f'/vurderinger/{proposal_id}"' not in browser.get("/vurderinger").text
    shown = browser.get("/vurderinger?slettede=true")
    assert "Gjenopprett" in shown.text
    browser.post(f"/vurderinger/{proposal_id}/gjenopprett?csrf={csrf}")
    assert f'href="/vurderinger/{proposal_id}"' in browser.get("/vurderinger").text


def test_gis_uploads_with_the_session_and_sees_versions(
    browser: TestClient, tmp_path: Path
) -> None:
    csrf = sign_in(browser, token_for(browser, "gis"))
    page = browser.get("/lag")
    assert 'id="upload-form"' in page.text and f'data-csrf="{csrf}"' in page.text
    frame = gpd.GeoDataFrame(
        {"ARTYPE": [30]}, geometry=[box(262000, 6620000, 262100, 6620100)], crs=25833
    )
    frame.to_file(tmp_path / "ar5.gpkg")
    with (tmp_path / "ar5.gpkg").open("rb") as fh:
        done = browser.post(
            "/api/layers",
            files={"file": ("ar5.gpkg", fh)},
            data={"kind": "land_cover", "name": "AR5 fra nettleseren"},
            headers={"X-CSRF-Token": csrf},
        )
    assert done.status_code == 201, done.text
    layer = browser.get(f"/lag/{done.json()['layer_id']}")
    assert "AR5 fra nettleseren" in layer.text and "ar5.gpkg" in layer.text
    # a planner's session may not upload
    planner = TestClient(browser.app)
    planner_csrf = sign_in(planner, token_for(planner, "planner"))
    with (tmp_path / "ar5.gpkg").open("rb") as fh:
        refused = planner.post(
            "/api/layers",
            files={"file": ("ar5.gpkg", fh)},
            data={"kind": "land_cover", "name": "x"},
            headers={"X-CSRF-Token": planner_csrf},
        )
    assert refused.status_code == 403


def _lonlat(shape: Any) -> dict[str, Any]:
    return dict(mapping(gpd.GeoSeries([shape], crs=25833).to_crs(4326).iloc[0]))


def test_ecologist_adds_a_project_and_the_dashboard_moves(
    browser: TestClient, tmp_path: Path
) -> None:
    """2 ha of degraded land (1 ha mire, 1 ha forest); a drawn 0,5 ha project on the mire
    started in 2024 puts 25 % under restoration; the chart has the 15 % and 30 % lines."""
    x0, y0 = 262_000.0, 6_620_000.0
    degraded = gpd.GeoDataFrame(
        {"okosystem": ["wetland", "forest"], "basisaar": [2020, 2020]},
        geometry=[box(x0, y0, x0 + 100, y0 + 100), box(x0 + 500, y0, x0 + 600, y0 + 100)],
        crs=25833,
    )
    degraded.to_file(tmp_path / "degraded.gpkg")
    gis = TestClient(browser.app)
    gis_csrf = sign_in(gis, token_for(gis, "gis"))
    with (tmp_path / "degraded.gpkg").open("rb") as fh:
        made = gis.post(
            "/api/layers",
            files={"file": ("degraded.gpkg", fh)},
            data={"kind": "degraded_areas", "name": "Forringet"},
            headers={"X-CSRF-Token": gis_csrf},
        )
    assert made.status_code == 201, made.text
    csrf = sign_in(browser, token_for(browser, "ecologist"))
    before = browser.get("/restaurering")
    assert before.status_code == 200
    assert 'id="baseline">2,0 ha' in before.text and 'id="restored">0,0 ha' in before.text
    drawn = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": _lonlat(box(x0, y0, x0 + 50, y0 + 100)),
            }
        ],
    }
    saved = browser.post(
        f"/restaurering/ny?csrf={csrf}",
        data={
            "name": "Rehabilitering av Åsmyra",
            "ecosystem_type": "wetland",
            "status": "initiated",
            "date": "2024-01-01",
            "footprint": json.dumps(drawn),
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    after = browser.get("/restaurering")
    assert after.status_code == 200, re.findall(r'role="alert">([^<]+)', after.text)
    assert 'id="restored">0,5 ha' in after.text and 'id="share">25,0 %' in after.text
    assert "Rehabilitering av Åsmyra" in after.text
    assert after.text.count('class="target"') == 2  # the 15 % and 30 % lines
    missing = browser.post(
        f"/restaurering/ny?csrf={csrf}",
        data={
            "name": "x",
            "ecosystem_type": "wetland",
            "status": "initiated",
            "date": "2024-06-01",
        },
    )
    assert missing.status_code == 422 and "Tegn prosjektområdet" in missing.text
    # the project's page: add a status; its history has both versions
    found = re.search(r'href="/restaurering/(\d+)"', after.text)
    assert found
    added = browser.post(
        f"/restaurering/{found.group(1)}/status?csrf={csrf}",
        data={"status": "completed", "date": "2025-06-01"},
    )
    assert added.status_code == 200
    assert "Fullført" in added.text and "2025-06-01" in added.text
    assert added.text.count("<td>update</td>") == 1 and added.text.count("<td>create</td>") == 1
    # import from a file on the same page (the API with the session and its CSRF token)
    gpd.GeoDataFrame(
        {
            "navn": ["Import-myr"],
            "okosystem": ["wetland"],
            "status": ["planned"],
            "status_date": ["2024-02-01"],
        },
        geometry=[box(x0 + 60, y0, x0 + 90, y0 + 100)],
        crs=25833,
    ).to_file(tmp_path / "projects.gpkg")
    with (tmp_path / "projects.gpkg").open("rb") as fh:
        imported = browser.post(
            "/api/restoration/projects/import",
            files={"file": ("projects.gpkg", fh)},
            headers={"X-CSRF-Token": csrf},
        )
    assert imported.status_code == 201 and imported.json()["imported"] == 1
    assert "Import-myr" in browser.get("/restaurering").text
    # a region no boundaries layer knows: the message on the page, by the field
    unknown = browser.get("/restaurering?region=Ås")
    assert unknown.status_code == 422 and 'id="region-error"' in unknown.text


def test_planner_starts_the_plan_analysis_and_the_land_account_from_the_plan(
    browser: TestClient,
    client: TestClient,
    plans: tuple[int, int],  # noqa: F811
) -> None:
    in_force, proposed = plans
    csrf = sign_in(browser, token_for(browser, "planner"))
    page = browser.get(f"/lag/{proposed}")
    assert 'id="account-form"' in page.text and "KPA 2015" in page.text
    analysed = browser.post(
        f"/lag/{proposed}/analyse?csrf={csrf}", data={"analysis": "plan"}
    )  # the job runs before the redirect is followed (TestClient runs background tasks)
    assert analysed.status_code == 200 and "B2" in analysed.text
    ranked = re.findall(r"<tr><td>(\w+)</td><td>(\d{4})", analysed.text)
    assert ranked[0] == ("B2", "1110")  # the mire zone first: most carbon at stake
    account = browser.post(
        f"/lag/{proposed}/analyse?csrf={csrf}",
        data={"analysis": "land_account", "compare_layer_id": str(in_force)},
    )
    assert account.status_code == 200
    assert "Sammenlignet med KPA 2015: 100,0 daa inn i byggeområder, 10,0 daa ut" in account.text
    assert "arealregnskap.xlsx" in account.text
