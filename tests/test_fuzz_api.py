"""Every operation of the OpenAPI document, fed generated input by Schemathesis: never a 5xx.

The service runs in-process on its own database holding the demo (layers, proposals, a plan
analysis, restoration projects), so generated ids and parameters reach real rows, and every
request carries an admin token so that writes get past authentication to the handlers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from geoservice import access
from geoservice.app import create_app
from geoservice.database import create_db_engine
from geoservice.demo import (
    DEMO_LAYERS,
    load_demo,
    load_demo_plan_analysis,
    load_demo_proposals,
    load_demo_restoration,
)
from geoservice.settings import Settings
from tests.conftest import TEMPLATE_DB, Server, create_database, drop_database

EXAMPLES = int(os.environ.get("GEOSERVICE_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_service(
    server: Server, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, str]]:
    """Settings of a service on a database holding the demo, and an admin token for it."""
    name = f"geoservice_test_fuzz_{os.getpid()}"
    create_database(server.admin_url, name, template=TEMPLATE_DB)
    url = server.service_url(name)
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    service = Settings(
        database_url=url,
        data_dir=data_dir,
        migrate_on_start=False,
        map_basemap="none",
        request_timeout_s=60,
        dask_workers=1,  # every valid national run starts a local Dask cluster
    )
    engine = create_db_engine(url, service)
    try:
        layer_ids = load_demo(engine, service, say=lambda _: None)
        plan = layer_ids[[item.kind for item in DEMO_LAYERS].index("land_use_plan")]
        load_demo_restoration(engine, service, say=lambda _: None)
        load_demo_proposals(engine, service, say=lambda _: None)
        load_demo_plan_analysis(engine, plan, say=lambda _: None)
        access.add_user(engine, "fuzzer")
        _, token = access.create_token(engine, "fuzzer", "admin")
    finally:
        engine.dispose()
    yield service, token
    drop_database(server.admin_url, name)


@pytest.fixture(scope="module")
def api_schema(fuzz_service: tuple[Settings, str]) -> schemathesis.BaseSchema:
    service, _ = fuzz_service
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(service))


def _cases() -> list[tuple[GenerationMode, str, str]]:
    """Every documented operation with valid input, and those that take input with invalid
    input too (building the app needs no database)."""
    document = create_app(Settings(database_url="postgresql://u@127.0.0.1/none")).openapi()
    cases = []
    for path, operations in document["paths"].items():
        for method, spec in operations.items():
            cases.append((GenerationMode.POSITIVE, method.upper(), path))
            if spec.get("parameters") or spec.get("requestBody"):
                cases.append((GenerationMode.NEGATIVE, method.upper(), path))
    return cases


@pytest.mark.parametrize(("mode", "method", "path"), _cases())
def test_no_server_errors(
    api_schema: schemathesis.BaseSchema,
    fuzz_service: tuple[Settings, str],
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    """Valid and invalid input alike: a 2xx, 3xx or a 4xx that says what is wrong."""
    _, token = fuzz_service
    operation = api_schema[path][method]

    # A valid national run is a whole Dask run (seconds each): two of them show valid input
    # gets no 5xx; tests/test_national.py checks what they compute.
    national_run = mode is GenerationMode.POSITIVE and path.startswith("/api/national/")
    national_run = national_run and method == "POST"

    @settings(
        max_examples=2 if national_run else EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a failure here is reproducible
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=120)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} answered {response.status_code}: "
            f"{response.text[:500]}\nreproduce: {case.as_curl_command()}"
        )

    check()
