"""National runs on Dask: a local cluster of 2 worker processes gives, kommune by kommune,
the numbers of the single-machine path (the land account of the whole plan; restoration
progress per region); a killed worker changes nothing; workers that keep dying fail the run
with nothing written; the API and the CLI run the same."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dask
import pytest
import shapely
from distributed.scheduler import KilledWorker
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from analyses import national
from analyses.land_account import land_account
from analyses.restoration import progress
from bench.country import Country, build_country, kommuner
from geoservice.app import create_app
from geoservice.database import create_db_engine
from geoservice.settings import Settings
from tests.conftest import TEMPLATE_DB, Server, authorize, create_database, drop_database

# Ås and its neighbours in Follo: a country of four kommuner and one fylke.
CODES = ["3212", "3214", "3216", "3218"]
AS_OF = date(2026, 1, 1)
REL = 1e-9


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    made = create_db_engine(str(settings.database_url), settings)
    yield made
    made.dispose()


@pytest.fixture
def country(engine: Engine) -> Country:
    # About 2 000 land-cover squares and 150 plan zones per kommune.
    return build_country(
        engine, codes=CODES, land_cover=8_000, zones=600, baseline=800, projects=1_200
    )


def _kommune_of_zones(engine: Engine, version_id: int) -> dict[int, str]:
    """Each zone's kommune by its point on surface, worked out here with shapely."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT fid, ST_AsBinary(ST_PointOnSurface(geom)) AS p FROM geoservice.feature "
                "WHERE version_id = :v"
            ),
            {"v": version_id},
        ).all()
    areas = kommuner(CODES)
    out: dict[int, str] = {}
    for r in rows:
        point = shapely.from_wkb(bytes(r.p))
        found = areas[areas.geometry.contains(point)]
        if len(found):
            out[int(r.fid)] = str(found["kommunenummer"].iloc[0])
    return out


def _single_machine(engine: Engine, plan_layer: int) -> dict[str, dict[str, Any]]:
    """The land account of the whole plan on this machine, its reserve summed per kommune."""
    account = land_account(engine, plan_layer)
    version_id = account["plan"]["version_id"]
    where = _kommune_of_zones(engine, version_id)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in account["reserve"]["zones"]:
        if entry["fid"] in where:
            groups[where[entry["fid"]]].append({**entry, "plan_version_id": version_id})
    return {k: national.reserve_sums(v) for k, v in groups.items()}


def _assert_same(run: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    got = {r["region"]: r for r in run["results"]}
    assert set(got) == set(expected)
    for code, sums in expected.items():
        row = got[code]
        assert row["reserve_zones"] == sums["reserve_zones"]
        for name in national.SUMMED:
            assert row[name] == pytest.approx(sums[name], rel=REL, abs=1e-9), (code, name)
        for quality, daa in sums["land_daa"].items():
            assert row["land_daa"][quality] == pytest.approx(daa, rel=REL), (code, quality)
        assert row["per_arealformal"].keys() == sums["per_arealformal"].keys()


def _run(
    engine: Engine, client: Any, kind: str, request: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    run_id = national.create_run(engine, kind, request)
    return national.execute_run(engine, run_id, client, **kw)


def test_two_workers_equal_the_single_machine_path_kommune_by_kommune(
    engine: Engine, country: Country
) -> None:
    expected = _single_machine(engine, country.plan_layer_id)
    with national.dask_client(None, 2) as client:
        seen: list[tuple[int, int]] = []
        run = _run(
            engine,
            client,
            "arealregnskap",
            {},
            split_km2=50,
            cell_m=5_000,
            progress=lambda done, total: seen.append((done, total)),
        )
        restoration = _run(engine, client, "restoration", {"as_of": AS_OF.isoformat()})
    assert run["status"] == "done", run["error"]
    _assert_same(run, expected)
    # Real work: every kommune has a reserve worth tonnes; kommuner over 50 km² were cut into
    # 5 km cells.
    assert len(run["results"]) == 4
    assert all(r["emission_t_co2e"] > 1000 and r["reserve_daa"] > 100 for r in run["results"])
    assert (
        sum(r["zones"] for r in run["results"]) + run["provenance"]["zones_outside_every_kommune"]
        == country.zones
    )
    assert run["tasks_total"] > 4 and len(run["task_times"]) == run["tasks_total"]
    assert seen[-1] == (run["tasks_total"], run["tasks_total"]) and len(seen) == len(
        run["task_times"]
    )
    assert run["engine"]["engine"] == "dask.distributed" and run["engine"]["workers"] == 2
    assert len({t["worker"] for t in run["task_times"]}) == 2
    assert run["provenance"]["factor_table"]["id"] and run["provenance"]["land_cover_versions"]
    assert run["provenance"]["preset"]["name"] == "miljodirektoratet-20y"
    # Every factor's and the preset's source resolves in the bibliography, with the guide.
    from analyses.factors import active_table
    from core.bibliography import keys_in

    cited = {s["key"] for s in run["provenance"]["sources"]}
    assert "kdd-2023-arealregnskap" in cited
    for factor in active_table(engine).factors.values():
        assert set(keys_in(factor.source)) <= cited, factor.source

    # Restoration: every kommune and the fylke, each equal to /api/restoration/progress.
    assert restoration["status"] == "done", restoration["error"]
    regions = {r["region"]: r for r in restoration["results"]}
    assert set(regions) == {*CODES, "32"}
    # The fylke was measured in parts (100 km grid cells) that add up to progress for it.
    assert sum(t["key"].startswith("32@") for t in restoration["task_times"]) >= 2
    for code, row in regions.items():
        single = progress(engine, region=code, as_of=AS_OF)
        for key in ("baseline_degraded_ha", "under_restoration_ha", "share"):
            assert row[key] == pytest.approx(single[key], rel=REL), (code, key)
        assert row["baseline_degraded_ha"] > 10
    # The fylke holds its kommuner (Kartverket's fylke and kommune files are generalised
    # separately, so squares on a border may fall on the other side: 0.05 % here).
    kommune_sum = sum(regions[c]["baseline_degraded_ha"] for c in CODES)
    assert regions["32"]["baseline_degraded_ha"] == pytest.approx(kommune_sum, rel=1e-3)


def test_a_worker_killed_mid_run_changes_nothing(engine: Engine, country: Country) -> None:
    expected = _single_machine(engine, country.plan_layer_id)
    with national.dask_client(None, 2) as client:
        pids = client.run(os.getpid)
        killed: list[int] = []

        def kill_one(done: int, total: int) -> None:
            if done == 3 and not killed:
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        run = _run(
            engine, client, "arealregnskap", {}, split_km2=1, cell_m=3_000, progress=kill_one
        )
        client.wait_for_workers(2, timeout=60)
        after = set(client.run(os.getpid).values())
    assert killed and killed[0] not in after  # the nanny started a new worker process
    assert run["status"] == "done", run["error"]
    assert run["tasks_total"] >= 40
    _assert_same(run, expected)


def test_workers_that_keep_dying_fail_the_run_with_nothing_written(
    engine: Engine, country: Country
) -> None:
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        national.dask_client(None, 2) as client,
    ):
        pids = list(client.run(os.getpid).values())

        def kill_all(done: int, total: int) -> None:
            if done == 2:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)

        run_id = national.create_run(engine, "arealregnskap", {})
        with pytest.raises(KilledWorker):
            national.execute_run(
                engine, run_id, client, split_km2=1, cell_m=3_000, progress=kill_all
            )
    run = national.run_result(engine, run_id)
    assert run["status"] == "failed"
    assert "nothing was written" in run["error"]
    assert "Workers kept dying" in run["error"]
    assert run["results"] == [] and run["regions_total"] == 0
    assert run["tasks_done"] < run["tasks_total"]


def test_api_and_cli_run_the_same(settings: Settings, engine: Engine, country: Country) -> None:
    # Runs the service started and a stop interrupted fail when it starts again; a run the
    # command line owns is left to it.
    left_by_api = national.create_run(engine, "restoration", {"via": "api"})
    owned_by_cli = national.create_run(engine, "restoration", {"via": "cli"})
    app = create_app(settings.model_copy(update={"dask_workers": 1}))
    with TestClient(app) as client:
        interrupted = national.run_result(engine, left_by_api)
        assert interrupted["status"] == "failed" and "stopped" in interrupted["error"]
        assert national.run_result(engine, owned_by_cli)["status"] == "queued"
        authorize(client, "viewer")
        refused = client.post("/api/national/arealregnskap", json={})
        assert refused.status_code == 403, refused.text
        authorize(client, "planner")
        bad = client.post("/api/national/arealregnskap", json={"plan_layers": [999]})
        assert bad.status_code == 422, bad.text
        assert "999" in bad.json()["detail"] and "land_use_plan" in bad.json()["detail"]
        queued = client.post(
            "/api/national/arealregnskap", json={"preset": "miljodirektoratet-20y"}
        )
        assert queued.status_code == 202, queued.text
        # TestClient runs the background task before it returns; a real client polls.
        deadline = time.monotonic() + 120
        while (run := client.get(queued.json()["href"]).json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert run["status"] == "done", run["error"]
        assert run["progress"] == 1 and run["engine"]["workers"] == 1
        assert run["request"]["via"] == "api" and run["created_by"]
        page = client.get(queued.json()["href"], params={"limit": 2, "offset": 2}).json()
        assert [r["region"] for r in page["results"]] == sorted(CODES)[2:]
        listed = client.get("/api/national/runs").json()
        assert listed[0]["id"] == run["id"] and listed[0]["status"] == "done"
        assert [r["id"] for r in listed[1:]] == [owned_by_cli, left_by_api]
        assert client.get("/api/national/runs/9999").status_code == 404
        authorize(client, "ecologist")
        made = client.post("/api/national/restoration", json={"as_of": AS_OF.isoformat()})
        assert made.status_code == 202, made.text
        restored = client.get(made.json()["href"]).json()
        assert restored["status"] == "done", restored["error"]
        assert restored["regions_total"] == 5

    from geoservice.cli import app as cli

    out = CliRunner().invoke(
        cli,
        ["national", "arealregnskap", "--workers", "1", "--json"],
        env={"GEOSERVICE_DATABASE_URL": str(settings.database_url)},
    )
    assert out.exit_code == 0, out.output
    printed = json.loads(out.stdout)
    by_api = {r["region"]: r["emission_t_co2e"] for r in run["results"]}
    by_cli = {r["region"]: r["emission_t_co2e"] for r in printed["results"]}
    assert by_cli == pytest.approx(by_api, rel=REL)
    assert printed["request"]["via"] == "cli"


def test_workers_reading_a_lagging_replica_fail_the_run(
    engine: Engine, country: Country, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers read from a database that has the schema but not yet the plans, as a
    # replica behind its primary would: they must refuse, not count nothing.
    name = f"geoservice_test_{os.getpid()}_replica"
    create_database(server.admin_url, name, template=TEMPLATE_DB)
    try:
        monkeypatch.setenv("GEOSERVICE_WORKER_DATABASE_URL", server.service_url(name))
        run_id = national.create_run(engine, "arealregnskap", {})
        with national.dask_client(None, 1) as client, pytest.raises(RuntimeError):
            national.execute_run(engine, run_id, client)
    finally:
        drop_database(server.admin_url, name)
    run = national.run_result(engine, run_id)
    assert run["status"] == "failed" and run["regions_total"] == 0
    assert "lacks layer version(s)" in run["error"] and "nothing was written" in run["error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_cluster_started_with_dasks_own_commands(engine: Engine, country: Country) -> None:
    # As the README tells a multi-machine set-up: `dask scheduler`, `dask worker`, then the
    # run sent to the scheduler's address.
    dask_cli = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [
            dask_cli,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [dask_cli, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with national.dask_client(address) as client:
            client.wait_for_workers(2, timeout=60)
            run = _run(engine, client, "arealregnskap", {})
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=30)
    assert run["status"] == "done", run["error"]
    assert run["engine"]["scheduler"] == address and run["engine"]["workers"] == 2
    _assert_same(run, _single_machine(engine, country.plan_layer_id))


def test_a_scheduler_that_does_not_answer_is_named(
    settings: Settings, engine: Engine, country: Country
) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    unreachable = settings.model_copy(
        update={"dask_scheduler": address, "dask_connect_timeout_s": 1.0}
    )
    with TestClient(create_app(unreachable)) as client:
        authorize(client, "planner")
        queued = client.post("/api/national/arealregnskap", json={})
        assert queued.status_code == 202, queued.text
        run = client.get(queued.json()["href"]).json()
    assert run["status"] == "failed" and run["regions_total"] == 0
    assert address in run["error"] and "dask scheduler" in run["error"]

    from geoservice.cli import app as cli

    out = CliRunner().invoke(
        cli,
        ["national", "restoration", "--scheduler", address],
        env={
            "GEOSERVICE_DATABASE_URL": str(settings.database_url),
            "GEOSERVICE_DASK_CONNECT_TIMEOUT_S": "1",
        },
    )
    assert out.exit_code == 1, out.output
    assert address in out.output and "did not answer" in out.output
    with engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT kind, status FROM geoservice.national_run ORDER BY id")
        ).all()
    assert [tuple(r) for r in statuses] == [("arealregnskap", "failed"), ("restoration", "failed")]
