"""Sixteen writers of one versioned thing at once get sixteen versions and no error.

Layers, factor tables, method presets and restoration projects all take their version
number from ``core.versions``, under one lock per thing held to the commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from analyses.factors import DEFAULT_CSV
from tests.conftest import authorize

WRITERS = 16
SQUARE = box(262_000, 6_649_000, 262_100, 6_649_100)


def _at_once(call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(call, range(WRITERS)))


def _versions(database_url: str, query: str, *params: Any) -> list[int]:
    with psycopg.connect(database_url) as conn:
        return [int(r[0]) for r in conn.execute(query, params).fetchall()]


def test_sixteen_writers_get_sixteen_versions(
    client: TestClient, live_server: str, database_url: str
) -> None:
    admin = {"Authorization": f"Bearer {authorize(client, 'admin')}"}
    geojson = (
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
        f'"geometry": {json.dumps(mapping(SQUARE))}}}]}}'
    ).encode()
    table = DEFAULT_CSV.read_bytes()
    preset = {
        "name": "kommunens-metode",
        "title": "Kommunens metode",
        "horizon_years": 20,
        "mineral_soil_loss": 0.5,
        "mineral_soil_immediate": False,
        "peat_stock_method": False,
        "source": "Kommunens klimabudsjett 2026, vedlegg 3",
    }
    project = {
        "geometry": mapping(SQUARE),
        "crs": "EPSG:25833",
        "properties": {
            "name": "Myr",
            "ecosystem_type": "wetland",
            "status_history": [{"status": "planned", "date": "2025-01-01"}],
        },
    }
    with httpx.Client(base_url=live_server, headers=admin, timeout=120) as http:
        created = http.post("/api/restoration/projects", json=project)
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        runs = {
            "layer": lambda i: http.post(
                "/api/layers",
                files={"file": ("omrade.geojson", geojson)},
                data={"kind": "generic", "name": "samtidig", "crs": "EPSG:25833"},
            ),
            "table": lambda i: http.post(
                "/api/carbon/factor-tables",
                files={"file": ("faktorer.csv", table)},
                data={"name": "kommunetabell"},
            ),
            "preset": lambda i: http.post("/api/carbon/presets", json=preset),
            "project": lambda i: http.put(f"/api/restoration/projects/{pid}", json=project),
        }
        for name, call in runs.items():
            answers = _at_once(call)
            assert [a.status_code for a in answers if a.status_code >= 300] == [], (
                name,
                [a.text[:200] for a in answers if a.status_code >= 300][:3],
            )
    expected = list(range(1, WRITERS + 1))
    assert (
        _versions(
            database_url,
            "SELECT v.version FROM geoservice.layer_version v JOIN geoservice.layer l "
            "ON l.id = v.layer_id WHERE l.name = %s ORDER BY 1",
            "samtidig",
        )
        == expected
    )
    assert (
        _versions(
            database_url,
            "SELECT version FROM geoservice.carbon_factor_table WHERE name = %s ORDER BY 1",
            "kommunetabell",
        )
        == expected
    )
    assert (
        _versions(
            database_url,
            "SELECT version FROM geoservice.method_preset WHERE name = %s ORDER BY 1",
            "kommunens-metode",
        )
        == expected
    )
    assert _versions(
        database_url,
        "SELECT version FROM geoservice.restoration_project_history WHERE project_id = %s "
        "ORDER BY 1",
        pid,
    ) == list(range(1, WRITERS + 2))
    with psycopg.connect(database_url) as conn:
        active = conn.execute(
            "SELECT count(*) FROM geoservice.carbon_factor_table WHERE active"
        ).fetchone()
    assert active == (1,)
