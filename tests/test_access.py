"""Roles, tokens and the audit log, over every write endpoint the API documents."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from typer.testing import CliRunner

from geoservice.app import create_app
from geoservice.cli import app as cli
from geoservice.settings import Settings
from tests.conftest import authorize
from tests.test_layers import KOMMUNER, upload

# Who may call each write endpoint. A new write endpoint must be added here, or the
# matrix test fails: nothing is writable by accident.
WRITE_ROLES: dict[tuple[str, str], str] = {
    ("post", "/api/layers"): "gis",
    ("post", "/api/layers/{layer_id}/versions/{version}/activate"): "admin",
    ("post", "/api/proposals"): "planner",
    ("post", "/api/plans/{layer_id}/analysis"): "planner",
    ("post", "/api/plans/{layer_id}/land-account"): "planner",
    ("post", "/api/carbon/presets"): "admin",
    ("post", "/api/carbon/factor-tables"): "admin",
    ("post", "/api/restoration/projects"): "ecologist",
    ("post", "/api/restoration/projects/import"): "ecologist",
    ("put", "/api/restoration/projects/{project_id}"): "ecologist",
    ("delete", "/api/restoration/projects/{project_id}"): "ecologist",
    ("post", "/api/restoration/projects/{project_id}/restore"): "ecologist",
    ("patch", "/api/proposals/{proposal_id}"): "planner",
    ("delete", "/api/proposals/{proposal_id}"): "planner",
    ("post", "/api/proposals/{proposal_id}/restore"): "planner",
    ("post", "/api/restoration/progress"): "viewer",  # a read that takes a polygon
    ("post", "/api/national/arealregnskap"): "planner",
    ("post", "/api/national/restoration"): "ecologist",
}
ROLES = ("viewer", "planner", "gis", "ecologist", "admin")


def concrete(path: str) -> str:
    return path.replace("{layer_id}", "1").replace("{version}", "1").replace("{project_id}", "1")


def call(client: TestClient, method: str, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method.upper(), concrete(path), headers=headers, json={})


@pytest.fixture
def private(settings: Settings) -> Any:
    """A client of a service whose reads are not public, with one token per role."""
    with TestClient(create_app(settings.model_copy(update={"public_reads": False}))) as client:
        tokens = {role: authorize(client, role) for role in ROLES}
        client.headers.pop("Authorization")
        yield client, tokens


def test_role_matrix_over_every_write_endpoint(private: Any) -> None:
    client, tokens = private
    documented = {
        (method, path)
        for path, item in client.get(
            "/openapi.json", headers={"Authorization": f"Bearer {tokens['viewer']}"}
        )
        .json()["paths"]
        .items()
        for method in item
        if method in ("post", "put", "patch", "delete")
    }
    assert documented == set(WRITE_ROLES), "classify every write endpoint in WRITE_ROLES"
    for (method, path), needed in WRITE_ROLES.items():
        assert call(client, method, path, None).status_code == 401, (method, path)
        assert call(client, method, path, "gs_not-a-token").status_code == 401
        for role, token in tokens.items():
            status = call(client, method, path, token).status_code
            allowed = role in (needed, "admin") or needed == "viewer"
            if allowed:
                assert status not in (401, 403), (method, path, role, status)
            else:
                assert status == 403, (method, path, role, status)


def test_reads_private_or_public(private: Any, settings: Settings) -> None:
    client, tokens = private
    refused = client.get("/api/layers")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert "geoservice tokens create" in refused.json()["detail"]
    assert (
        client.get(
            "/api/layers", headers={"Authorization": f"Bearer {tokens['viewer']}"}
        ).status_code
        == 200
    )
    # Clients that cannot send headers (map pages, tiles, QGIS, GDAL) may put the token in
    # the URL of a read of the OGC API, tiles or maps; nowhere else (it would land in logs).
    url_token = {"access_token": tokens["viewer"]}
    assert client.get("/ogc/collections", params=url_token).status_code == 200
    assert client.get("/api/layers", params=url_token).status_code == 401
    admin_url = {"access_token": tokens["admin"]}
    assert client.get("/api/audit", params=admin_url).status_code == 401
    # HTTP Basic with the token as the password, any user name: what QGIS sends
    basic = httpx.BasicAuth("qgis", tokens["viewer"])
    assert client.get("/api/layers", auth=basic).status_code == 200
    assert client.get("/ogc/collections", auth=httpx.BasicAuth("x", "gs_wrong")).status_code == 401
    assert (
        client.post("/api/proposals", params={"access_token": tokens["admin"]}, json={}).status_code
        == 401
    )
    health = client.get("/healthz")  # health stays open for monitoring, without versions
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    full = client.get("/healthz", headers=viewer).json()
    assert full["database"]["postgis"] and full["version"]
    with TestClient(create_app(settings)) as public:  # public_reads=True
        assert public.get("/api/layers").status_code == 200
        assert public.post("/api/proposals", json={}).status_code == 401


def test_audit_log_records_who_what_and_versions(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    authorize(client, "gis", "kari")
    frame = gpd.GeoDataFrame(
        {"navn": ["a"]}, geometry=[box(262_000, 6_620_000, 262_100, 6_620_100)], crs=25833
    )
    frame.to_file(tmp_path / "a.gpkg")
    first = upload(client, tmp_path / "a.gpkg", kind="generic", name="Lag")
    second = upload(client, tmp_path / "a.gpkg", kind="generic", name="Lag")
    layer = first.json()["layer_id"]
    assert second.json()["version"] == 2
    assert client.post(f"/api/layers/{layer}/versions/1/activate").status_code == 403
    assert client.get("/api/audit").status_code == 403
    authorize(client, "admin", "ola")
    assert client.post(f"/api/layers/{layer}/versions/1/activate").status_code == 200
    log = client.get("/api/audit").json()
    entries = log["items"]
    assert log["total"] == 4
    activate, refused, upload2, upload1 = entries
    assert (activate["user"], activate["role"], activate["status"]) == ("ola", "admin", 200)
    assert activate["objects"] == {
        "layer_id": layer,
        "version": 1,
        "version_before": 2,
        "version_after": 1,
    }
    assert (refused["user"], refused["status"]) == ("kari", 403)
    assert upload1["objects"] == {"layer_id": layer, "version_after": 1}
    assert upload2["objects"] == {"layer_id": layer, "version_after": 2}
    assert upload1["method"] == "POST" and upload1["path"] == "/api/layers"
    assert [
        e["user"] for e in client.get("/api/audit", params={"user": "kari"}).json()["items"]
    ] == [
        "kari",
        "kari",
        "kari",
    ]
    with psycopg.connect(str(settings.database_url)) as conn:
        uploader = conn.execute(
            "SELECT uploader FROM geoservice.layer_version WHERE layer_id = %s ORDER BY version",
            (layer,),
        ).fetchall()
    assert uploader == [("kari",), ("kari",)]


def test_tokens_from_the_cli_are_hashed_and_revocable(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", str(settings.database_url))
    runner = CliRunner()
    assert runner.invoke(cli, ["users", "add", "eva"]).exit_code == 0
    assert "exists already" in runner.invoke(cli, ["users", "add", "eva"]).output
    made = runner.invoke(cli, ["tokens", "create", "--user", "eva", "--role", "ecologist"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("gs_")
    bad = runner.invoke(cli, ["tokens", "create", "--user", "eva", "--role", "boss"])
    assert bad.exit_code == 1 and "role must be one of" in bad.output
    with psycopg.connect(str(settings.database_url)) as conn:
        dump = str(conn.execute("SELECT * FROM geoservice.api_token").fetchall())
    assert token not in dump and token[3:] not in dump
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/carbon/presets", headers=headers, json={}).status_code == 403
    listed = runner.invoke(cli, ["tokens", "list"]).output
    token_id = next(
        re.search(r"(\d+)", line).group(1)  # type: ignore[union-attr]
        for line in listed.splitlines()
        if "eva" in line and "ecologist" in line
    )
    assert runner.invoke(cli, ["tokens", "revoke", token_id]).exit_code == 0
    revoked = client.get("/api/layers", headers=headers)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    # Command-line writes are audited like API writes, under the operating-system user.
    layer = runner.invoke(
        cli, ["layers", "import", str(KOMMUNER), "--kind", "boundaries", "--name", "k"]
    )
    assert layer.exit_code == 0, layer.output
    audit = client.get("/api/audit", params={"limit": 100}).json()["items"]
    commands = [(e["method"], e["path"], e["objects"]) for e in audit if e["method"] == "CLI"]
    assert ("CLI", "users add", {"user": "eva"}) in commands
    assert ("CLI", "tokens revoke", {"token_id": int(token_id)}) in commands
    assert ("CLI", "layers import Kommuner-M.geojson", {"layer_id": 1, "version_after": 1}) in (
        commands
    )
    assert all(e["user"].endswith("(command line)") for e in audit if e["method"] == "CLI")


def _wait(condition: Any, seconds: float = 5.0) -> float:
    """Poll until ``condition()`` holds; return how long it took (fails after ``seconds``)."""
    import time

    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "condition not met in time"
        time.sleep(0.02)
    return time.monotonic() - start


def test_revocation_reaches_every_process_at_once(settings: Settings) -> None:
    from geoservice import access

    cached = settings.model_copy(update={"token_cache_s": 60, "public_reads": False})
    with TestClient(create_app(cached)) as one, TestClient(create_app(cached)) as two:
        caches = [c.app.state.token_cache for c in (one, two)]  # type: ignore[attr-defined]
        _wait(lambda: all(c.listening for c in caches))
        token = authorize(one, "viewer")
        two.headers["Authorization"] = f"Bearer {token}"
        assert one.get("/api/layers").status_code == 200
        assert two.get("/api/layers").status_code == 200
        assert all(c.get(token) is not None for c in caches), "both processes cache it"
        engine = one.app.state.engine  # type: ignore[attr-defined]
        [row] = [t for t in access.list_tokens(engine) if t["user"] == "test-viewer"]
        access.revoke_token(engine, row["id"])  # as the CLI does, outside both apps
        took = _wait(lambda: all(c.get(token) is None for c in caches))
        assert took < 1.0, f"revocation took {took:.2f} s to reach the caches"
        for client in (one, two):
            late = client.get("/api/layers")
            assert late.status_code == 401 and "revoked" in late.json()["detail"]
        # An unknown token is never cached: refused every time.
        one.headers["Authorization"] = f"Bearer {token}x"
        assert one.get("/api/layers").status_code == 401
        # A token with an expiry stops working then, though the cache would keep it 60 s.
        _, short = access.create_token(
            engine, "test-viewer", "viewer", expires_in=timedelta(seconds=2)
        )
        one.headers["Authorization"] = f"Bearer {short}"
        assert one.get("/api/layers").status_code == 200
        _wait(lambda: one.get("/api/layers").status_code == 401, seconds=6)
        assert "expired" in one.get("/api/layers").json()["detail"]


def test_tokens_create_expires(client: TestClient, settings: Settings) -> None:
    env = {"GEOSERVICE_DATABASE_URL": str(settings.database_url)}
    runner = CliRunner()
    runner.invoke(cli, ["users", "add", "kari"], env=env)
    made = runner.invoke(
        cli, ["tokens", "create", "--user", "kari", "--role", "viewer", "--expires", "90d"], env=env
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(cli, ["tokens", "list"], env=env)
    assert "kari" in listed.output
    from geoservice import access

    engine = client.app.state.engine  # type: ignore[attr-defined]
    [row] = [t for t in access.list_tokens(engine) if t["user"] == "kari"]
    days = (row["expires_at"] - row["created_at"]).total_seconds() / 86400
    assert days == pytest.approx(90, abs=0.01)
    bad = runner.invoke(
        cli,
        ["tokens", "create", "--user", "kari", "--role", "viewer", "--expires", "soon"],
        env=env,
    )
    assert bad.exit_code == 2 and "--expires" in bad.output


def test_every_html_response_carries_security_headers(client: TestClient, tmp_path: Path) -> None:
    from tests.test_carbon import FOREST

    frame = gpd.GeoDataFrame({"ARTYPE": [30], "ARSKOGBON": [14]}, geometry=[FOREST], crs=25833)
    frame.to_file(tmp_path / "ar5.gpkg")
    layer = upload(client, tmp_path / "ar5.gpkg", kind="land_cover", name="AR5").json()
    footprint = {"type": "Polygon", "coordinates": [list(FOREST.exterior.coords)]}
    made = client.post(
        "/api/proposals", json={"footprint": footprint, "crs": "EPSG:25833", "arealformal": 1110}
    )
    assert made.status_code == 201, made.text
    pages = [
        f"/api/proposals/{made.json()['id']}/report",
        f"/maps/layers/{layer['layer_id']}",
        f"/maps/proposals/{made.json()['id']}",
        "/docs",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors" in policy, path
        assert "default-src 'none'" in policy, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] in ("DENY", "SAMEORIGIN")
    report = client.get(pages[0]).headers["content-security-policy"]
    assert "script-src" not in report  # nothing runs in the printable report
    assert client.get("/api/layers").headers["x-content-type-options"] == "nosniff"


def test_tokens_never_reach_the_logs(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    from tests.conftest import running_server

    token = authorize(client, "viewer")
    log_file = tmp_path / "access.log"
    with (
        log_file.open("w") as out,
        running_server(settings, {"GEOSERVICE_PUBLIC_READS": "false"}, stdout=out) as (proc, base),
    ):
        assert httpx.get(f"{base}/ogc/collections?access_token={token}").status_code == 200
        assert httpx.get(f"{base}/ogc?access_token=gs_wrong").status_code == 401
        listed = httpx.get(f"{base}/ogc/collections", params={"access_token": token}).json()
        proc.terminate()
        proc.wait(timeout=10)
        errors = proc.stderr.read().decode() if proc.stderr else ""
    logged = log_file.read_text() + errors
    assert "/ogc/collections?access_token=***" in logged
    assert token not in logged and "gs_wrong" not in logged
    assert "collections" in listed


def test_the_openapi_document_describes_the_main_responses(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()

    def schema_of(path: str, method: str, status: str) -> str:
        content = doc["paths"][path][method]["responses"][status]["content"]
        return str(content["application/json"]["schema"].get("$ref", ""))

    expected = {
        ("/api/layers", "get", "200"): "Page_Layer_",
        ("/api/layers", "post", "201"): "ImportResult",
        ("/api/layers/{layer_id}", "get", "200"): "Layer",
        ("/api/layers/{layer_id}/versions", "get", "200"): "LayerVersions",
        ("/api/proposals", "post", "201"): "Proposal",
        ("/api/proposals/{proposal_id}", "get", "200"): "Proposal",
        ("/api/plans/{layer_id}/analysis", "post", "202"): "PlanJobQueued",
        ("/api/plans/analyses/{job_id}", "get", "200"): "PlanJob",
        ("/api/restoration/projects", "get", "200"): "Page_Project_",
        ("/api/restoration/projects/{project_id}", "get", "200"): "Project",
        ("/api/restoration/projects/{project_id}/history", "get", "200"): "ProjectHistory",
        ("/api/restoration/progress", "get", "200"): "Progress",
        ("/api/national/arealregnskap", "post", "202"): "NationalRunQueued",
        ("/api/national/runs/{run_id}", "get", "200"): "NationalRun",
    }
    for (path, method, status), model in expected.items():
        assert schema_of(path, method, status).endswith("/" + model), (path, method)
    progress = doc["components"]["schemas"]["Progress"]
    assert {"baseline_degraded_ha", "under_restoration_ha", "share"} <= set(progress["required"])
