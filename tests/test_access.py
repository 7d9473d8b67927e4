"""Roles, tokens and the audit log, over every write endpoint the API documents."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import geopandas as gpd
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
    ("post", "/api/carbon/presets"): "admin",
    ("post", "/api/carbon/factor-tables"): "admin",
    ("post", "/api/restoration/projects"): "ecologist",
    ("post", "/api/restoration/projects/import"): "ecologist",
    ("put", "/api/restoration/projects/{project_id}"): "ecologist",
    ("delete", "/api/restoration/projects/{project_id}"): "ecologist",
    ("post", "/api/restoration/progress"): "viewer",  # a read that takes a polygon
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
    # browsers cannot send headers for map pages and tiles: a GET may carry access_token
    assert client.get("/api/layers", params={"access_token": tokens["viewer"]}).status_code == 200
    assert (
        client.post("/api/proposals", params={"access_token": tokens["admin"]}, json={}).status_code
        == 401
    )
    assert client.get("/healthz").status_code == 200  # health stays open for monitoring
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


def test_confirmed_tokens_are_cached_for_a_short_while(settings: Settings) -> None:
    import time

    from geoservice import access

    cached = settings.model_copy(update={"token_cache_s": 0.5, "public_reads": False})
    with TestClient(create_app(cached)) as client:
        token = authorize(client, "viewer")
        assert client.get("/api/layers").status_code == 200  # asks the database, then caches
        engine = client.app.state.engine  # type: ignore[attr-defined]
        [row] = [t for t in access.list_tokens(engine) if t["user"] == "test-viewer"]
        access.revoke_token(engine, row["id"])
        assert client.get("/api/layers").status_code == 200, "still trusted within the TTL"
        time.sleep(0.6)
        late = client.get("/api/layers")
        assert late.status_code == 401 and "revoked" in late.json()["detail"]
        # An unknown token is never cached: refused every time.
        client.headers["Authorization"] = f"Bearer {token}x"
        assert client.get("/api/layers").status_code == 401
