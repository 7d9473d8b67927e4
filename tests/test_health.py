import psycopg
from fastapi.testclient import TestClient

from geoservice.app import create_app
from geoservice.embedded import free_port
from geoservice.migrate import head_revision
from geoservice.settings import Settings


def test_healthz_reports_versions_and_revision(client: TestClient, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
        postgis = conn.execute("SELECT postgis_lib_version()").fetchone()
    assert pg is not None and postgis is not None

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    db = body["database"]
    assert db["reachable"] is True
    assert db["postgresql"] == pg[0].split()[0]
    assert db["postgis"] == postgis[0]
    major, minor = (int(x) for x in db["postgis"].split(".")[:2])
    assert (major, minor) >= (3, 3)
    assert db["schema_revision"] == head_revision()
    assert db["schema_up_to_date"] is True


def test_healthz_says_degraded_when_migrations_are_pending(
    empty_database_url: str, tmp_path
) -> None:
    # PostGIS is there (the set-up step made it), the migrations are not.
    settings = Settings(
        database_url=empty_database_url,
        data_dir=tmp_path,
        migrate_on_start=False,
        public_reads=True,
    )
    with TestClient(create_app(settings)) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["database"]["schema_revision"] is None
    assert body["database"]["schema_up_to_date"] is False


def test_app_applies_migrations_on_start(empty_database_url: str, tmp_path) -> None:
    settings = Settings(
        database_url=empty_database_url, data_dir=tmp_path, migrate_on_start=True, public_reads=True
    )
    with TestClient(create_app(settings)) as client:
        body = client.get("/healthz").json()
    assert body["database"]["schema_revision"] == head_revision()
    assert body["status"] == "ok"


def test_healthz_503_when_database_unreachable(tmp_path) -> None:
    dead = f"postgresql://nobody:x@127.0.0.1:{free_port()}/nothing"
    settings = Settings(
        database_url=dead, data_dir=tmp_path, migrate_on_start=False, public_reads=True
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["database"]["reachable"] is False
    assert "connection" in body["database"]["error"].lower()


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "geoservice"
    assert "/healthz" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text.lower()


def test_openapi_document_is_valid_openapi_30(client: TestClient) -> None:
    from openapi_spec_validator import OpenAPIV30SpecValidator, validate

    spec = client.get("/openapi.json").json()
    assert spec["openapi"] == "3.0.3"
    validate(spec, cls=OpenAPIV30SpecValidator)
    text = str(spec)
    assert "'type': 'null'" not in text and "contentMediaType" not in text
    upload = spec["paths"]["/api/layers"]["post"]["requestBody"]["content"]
    ref = next(iter(upload.values()))["schema"]["$ref"].rsplit("/", 1)[-1]
    form = spec["components"]["schemas"][ref]["properties"]
    assert form["file"] == {**form["file"], "type": "string", "format": "binary"}
    assert form["crs"].get("nullable") is True
