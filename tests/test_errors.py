import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core import errors
from geoservice.app import create_app
from geoservice.handlers import add_exception_handlers
from geoservice.settings import Settings
from tests.conftest import authorize


def _app() -> FastAPI:
    app = FastAPI()
    add_exception_handlers(app)

    @app.get("/boom/{kind}")
    def boom(kind: str, n: int = 0) -> dict[str, str]:
        exc: errors.GeoServiceError = {
            "invalid": errors.InvalidInput("arealformål 9999 is not a known code", field="formal"),
            "missing": errors.NotFound("layer 7 does not exist"),
            "big": errors.PayloadTooLarge("the file is 3 GB; the limit is 1 GB"),
            "setup": errors.SetupError("PostGIS is not installed"),
        }[kind]
        raise exc

    return app


def test_domain_errors_map_to_status_and_json_body() -> None:
    client = TestClient(_app())
    cases = {
        "invalid": (422, "invalid_input", "arealformål 9999 is not a known code"),
        "missing": (404, "not_found", "layer 7 does not exist"),
        "big": (413, "payload_too_large", "the file is 3 GB; the limit is 1 GB"),
        "setup": (503, "setup_error", "PostGIS is not installed"),
    }
    for kind, (status, code, detail) in cases.items():
        response = client.get(f"/boom/{kind}")
        assert response.status_code == status, kind
        body = response.json()
        assert body["error"] == code
        assert body["detail"] == detail
    assert client.get("/boom/invalid").json()["field"] == "formal"


def test_request_validation_and_unknown_route_use_the_same_shape() -> None:
    client = TestClient(_app())
    bad = client.get("/boom/invalid", params={"n": "many"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_request"
    assert "n" in bad.json()["detail"]
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "detail": "Not Found",
        "code": "not_found",
        "description": "Not Found",
    }


def test_request_timeout_answers_503(settings: Settings, tmp_path: Path) -> None:
    from tests.test_maps import generic_layer

    slow = settings.model_copy(update={"request_timeout_s": 0.001})
    with TestClient(create_app(settings)) as client:
        authorize(client)
        layer = generic_layer(client, tmp_path)
    with TestClient(create_app(slow)) as client:
        response = client.get(f"/maps/layers/{layer}")
    assert response.status_code == 503
    assert response.json()["error"] == "request_timeout"
    assert "GEOSERVICE_REQUEST_TIMEOUT_S" in response.json()["detail"]


def test_a_write_is_never_reported_failed_and_then_done(settings: Settings) -> None:
    """An upload longer than the request time limit is not cut off with a 503 (it would go
    on and publish): writes are exempt, and the client hears 201 when it is done."""
    from tests.test_layers import N50, upload

    slow = settings.model_copy(update={"request_timeout_s": 0.001})
    with TestClient(create_app(slow)) as client:
        authorize(client, "gis")
        response = upload(client, N50, kind="land_cover", name="N50")
        assert response.status_code == 201, response.text
        layers = client.get("/api/layers")
        assert layers.status_code == 503  # reads still answer 503 past the limit
    with TestClient(create_app(settings)) as client:
        authorize(client)
        listed = client.get("/api/layers").json()
    assert listed["total"] == 1 and listed["items"][0]["active_version"]["feature_count"] == 1286


def test_cors_only_for_configured_origins(settings: Settings) -> None:
    origin = "https://kart.example.no"
    with TestClient(create_app(settings)) as client:
        plain = client.get("/healthz", headers={"Origin": origin})
    assert "access-control-allow-origin" not in plain.headers
    allowed = settings.model_copy(update={"cors_origins": [origin]})
    with TestClient(create_app(allowed)) as client:
        ok = client.get("/healthz", headers={"Origin": origin})
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert ok.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-origin" not in other.headers


def test_values_postgresql_cannot_take_are_the_callers_error(client: TestClient) -> None:
    from tests.test_layers import N50, upload

    layer = upload(client, N50, kind="land_cover", name="n50").json()["layer_id"]
    nul = client.get(f"/ogc/collections/{layer}/items", params={"n50_klasse": "\x00"})
    assert nul.status_code == 422, nul.text
    assert nul.json()["error"] == "bad_value" and "NUL" in nul.json()["detail"]
    huge = client.get(f"/api/layers/{2**31}")
    assert huge.status_code == 422, "ids beyond PostgreSQL's integer are wrong addresses"
    ancient = client.get("/api/restoration/progress", params={"as_of": "0999-01-01"})
    assert ancient.status_code == 422
    # '¹' is a digit to str.isdigit() but no number to int(): refused, and audited as given.
    authorize(client, "planner")  # only a known caller's requests are audited
    superscript = client.post("/api/plans/%C2%B9/analysis", json={})
    assert superscript.status_code == 422, superscript.text
    assert "layer_id" in superscript.text


def test_every_log_line_of_a_request_carries_its_id(settings: Settings, tmp_path: Path) -> None:
    import json

    import httpx

    from tests.conftest import running_server

    with running_server(settings, {"GEOSERVICE_LOG_FORMAT": "json"}) as (proc, base):
        given = httpx.post(f"{base}/api/layers", headers={"X-Request-ID": "sak-2026-0042"})
        assert given.status_code == 401
        assert given.headers["x-request-id"] == "sak-2026-0042"
        made = httpx.post(f"{base}/api/layers", headers={"X-Request-ID": "bad id\\n<x>"})
        new_id = made.headers["x-request-id"]
        assert new_id != "bad id\\n<x>" and len(new_id) == 16
        proc.terminate()
        proc.wait(timeout=10)
        lines = proc.stderr.read().decode().splitlines() if proc.stderr else []
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    refused = [e for e in entries if "refused POST /api/layers" in e["message"]]
    assert {e["request_id"] for e in refused} == {"sak-2026-0042", new_id}
    assert all(e["level"] == "INFO" and e["logger"] == "geoservice.middleware" for e in refused)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_work_offline(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert "cdn.jsdelivr" not in page.text and "fastapi.tiangolo.com" not in page.text
    assert "googleapis" not in page.text
    assert "https://" not in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="(/static/vendor/[^"]+)"', page.text)
    assert len(assets) >= 2
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "script-src 'self' 'unsafe-inline'" in page.headers["content-security-policy"]
