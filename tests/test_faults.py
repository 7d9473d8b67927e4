"""Faults for real: PostGIS restarting under the service, the service killed mid-upload and
mid-assessment, two uploads to one layer at once, a plan analysis whose runner died."""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import psycopg
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from analyses.jobs import JOB_LOCK
from geoservice import access, migrate
from geoservice.app import create_app
from geoservice.database import create_db_engine
from geoservice.embedded import EmbeddedCluster
from geoservice.settings import Settings
from tests.conftest import FAST_CONF, authorize, reachable_tmpdir, running_server
from tests.test_layers import upload

X0, Y0 = 262_000.0, 6_620_000.0  # Ås, EPSG:25833


def squares(path: Path, n: int, *, artype: int, size: float = 8.0, x0: float = X0) -> Path:
    """``n`` disjoint squares on a 10 m grid, as a GeoPackage of AR5 land cover."""
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x, y = x0 + (i % side) * 10.0, Y0 + (i // side) * 10.0
    frame = gpd.GeoDataFrame(
        {"ARTYPE": np.full(n, artype), "ARSKOGBON": np.full(n, 14 if artype == 30 else 98)},
        geometry=shapely.box(x, y, x + size, y + size),
        crs=25833,
    )
    frame.to_file(path, driver="GPKG")
    return path


def token_for(settings: Settings, role: str) -> str:
    engine = create_db_engine(str(settings.database_url), settings)
    try:
        access.add_user(engine, f"faults-{role}")
        return access.create_token(engine, f"faults-{role}", role)[1]
    finally:
        engine.dispose()


def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def service_queries(database_url: str, like: str) -> list[tuple[Any, ...]]:
    """Statements the service runs right now whose text matches ``like``."""
    return query(
        database_url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'geoservice' AND state = 'active' AND query ILIKE %s",
        like,
    )


def no_service_sessions(database_url: str) -> bool:
    """True once PostgreSQL has noticed that the killed service is gone."""
    return not query(
        database_url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'geoservice'",
    )


def post_in_background(url: str, **kwargs: Any) -> threading.Thread:
    """Send a request that the test will cut off by killing the server."""

    def send() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server dies under it
            httpx.post(url, timeout=120, **kwargs)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def send_layer(base: str, path: Path, headers: dict[str, str]) -> httpx.Response:
    """Upload ``path`` as the next version of the land-cover layer 'ar5'."""
    with path.open("rb") as fh:
        return httpx.post(
            f"{base}/api/layers",
            files={"file": (path.name, fh)},
            data={"kind": "land_cover", "name": "ar5"},
            headers=headers,
            timeout=300,
        )


def kill(proc: Any) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_service_survives_a_postgis_restart(tmp_path: Path) -> None:
    root = reachable_tmpdir("geoservice-restart-")
    cluster = EmbeddedCluster(root / "postgres", extra_conf=FAST_CONF)
    try:
        url = cluster.start()
        migrate.upgrade(url)
        settings = Settings(database_url=url, data_dir=tmp_path / "data", migrate_on_start=False)
        path = squares(tmp_path / "ar5.gpkg", 10, artype=30)
        with TestClient(create_app(settings)) as client:
            authorize(client, "admin")
            first = upload(client, path, kind="land_cover", name="ar5")
            assert first.status_code == 201, first.text
            layer = first.json()["layer_id"]

            cluster.stop()
            down = client.get(f"/api/layers/{layer}")
            assert down.status_code == 503, down.text
            assert down.json()["error"] == "database_unavailable"

            cluster.start()
            # The pool's connections died with the server; the next request gets new ones.
            again = client.get(f"/api/layers/{layer}")
            assert again.status_code == 200, again.text
            assert again.json()["active_version"]["feature_count"] == 10
            second = upload(client, path, kind="land_cover", name="ar5")
            assert second.status_code == 201 and second.json()["version"] == 2
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def test_killed_mid_upload_and_mid_assessment_leaves_nothing(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    small = squares(tmp_path / "small.gpkg", 10, artype=30)
    big = squares(tmp_path / "big.gpkg", 150_000, artype=30)
    token = token_for(settings, "admin")
    auth = {"Authorization": f"Bearer {token}"}

    with running_server(settings) as (proc, base):
        ok = send_layer(base, small, auth)
        assert ok.status_code == 201, ok.text
        layer = ok.json()["layer_id"]
        post_in_background(
            f"{base}/api/layers",
            files={"file": ("big.gpkg", big.read_bytes())},
            data={"kind": "land_cover", "name": "ar5"},
            headers=auth,
        )
        wait_for(lambda: bool(service_queries(database_url, "COPY%")), "the upload's COPY")
        kill(proc)

    wait_for(lambda: no_service_sessions(database_url), "PostgreSQL to drop the sessions")
    assert query(database_url, "SELECT version, feature_count FROM geoservice.layer_version") == [
        (1, 10)
    ]
    leftovers = query(
        database_url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'geoservice' "
        "AND (tablename LIKE 'stage%%' OR tablename LIKE 'feature_v%%' OR tablename LIKE "
        "'scratch%%') ORDER BY 1",
    )
    assert leftovers == [(f"feature_v{ok.json()['version_id']}",)], "only version 1's table"

    # The service starts again with version 1 intact; the big file goes in whole this time,
    # then an assessment of all of it is killed while PostGIS works on it.
    with running_server(settings) as (proc, base):
        assert httpx.get(f"{base}/api/layers/{layer}").json()["active_version"]["version"] == 1
        done = send_layer(base, big, auth)
        assert done.status_code == 201 and done.json()["version"] == 2, done.text
        footprint = mapping(box(X0 - 10, Y0 - 10, X0 + 4_000, Y0 + 4_000))
        post_in_background(
            f"{base}/api/proposals",
            json={"footprint": footprint, "crs": "EPSG:25833", "arealformal": 1110},
            headers=auth,
        )
        wait_for(
            lambda: bool(service_queries(database_url, "%ST_Intersection%")),
            "the assessment's overlay",
        )
        kill(proc)

    wait_for(lambda: no_service_sessions(database_url), "PostgreSQL to drop the sessions")
    assert query(database_url, "SELECT count(*) FROM geoservice.proposal") == [(0,)]
    assert query(database_url, "SELECT version FROM geoservice.layer_version ORDER BY version") == [
        (1,),
        (2,),
    ]


def test_two_uploads_to_one_layer_at_once_make_two_clean_versions(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    forest = squares(tmp_path / "forest.gpkg", 3_000, artype=30)
    mire = squares(tmp_path / "mire.gpkg", 2_000, artype=60, x0=X0 + 5_000)
    token = token_for(settings, "gis")
    start = threading.Barrier(2)
    answers: dict[str, httpx.Response] = {}

    def send(path: Path, base: str) -> None:
        data = path.read_bytes()
        start.wait()
        answers[path.stem] = httpx.post(
            f"{base}/api/layers",
            files={"file": (path.name, data)},
            data={"kind": "land_cover", "name": "AR5 Ås"},  # a layer that does not exist yet
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )

    with running_server(settings) as (_, base):
        threads = [threading.Thread(target=send, args=(p, base)) for p in (forest, mire)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert {k: r.status_code for k, r in answers.items()} == {"forest": 201, "mire": 201}
    versions = sorted(r.json()["version"] for r in answers.values())
    assert versions == [1, 2]
    assert len({r.json()["layer_id"] for r in answers.values()}) == 1
    rows = query(
        database_url,
        "SELECT v.version, count(*), min(f.attrs->>'arealtype'), max(f.attrs->>'arealtype'), "
        "count(DISTINCT f.fid) FROM geoservice.layer_version v "
        "JOIN geoservice.feature f ON f.version_id = v.id GROUP BY v.version ORDER BY 1",
    )
    expected = {"forest": (3_000, "30"), "mire": (2_000, "60")}
    for version, count, lowest, highest, fids in rows:
        stem = next(k for k, r in answers.items() if r.json()["version"] == version)
        n, code = expected[stem]
        assert (count, lowest, highest, fids) == (n, code, code, n), "no mix of the two files"
    newest = max(answers.values(), key=lambda r: r.json()["version"])
    active = query(
        database_url,
        "SELECT v.version FROM geoservice.layer l JOIN geoservice.layer_version v "
        "ON v.id = l.active_version_id",
    )
    assert active == [(newest.json()["version"],)]


def test_an_analysis_whose_runner_died_is_reported_failed(
    client: TestClient, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        layer = conn.execute(
            "INSERT INTO geoservice.layer (name, kind) VALUES ('plan', 'land_use_plan') "
            "RETURNING id"
        ).fetchone()
        assert layer is not None
        ids = [
            conn.execute(
                "INSERT INTO geoservice.plan_analysis (layer_id, request, status) "
                "VALUES (%s, '{}', 'running') RETURNING id",
                (layer[0],),
            ).fetchone()[0]  # type: ignore[index]
            for _ in range(2)
        ]
    alive, dead = ids
    with psycopg.connect(database_url, autocommit=True) as runner:
        # A live runner holds its job's lock; the other job's runner is gone.
        runner.execute("SELECT pg_advisory_lock(%s, %s)", (JOB_LOCK, alive))
        assert client.get(f"/api/plans/analyses/{alive}").json()["status"] == "running"
        died = client.get(f"/api/plans/analyses/{dead}").json()
        assert died["status"] == "failed" and died["error"].startswith("interrupted")
    # The live runner's session ended without finishing: now its job is failed too.
    assert client.get(f"/api/plans/analyses/{alive}").json()["status"] == "failed"
