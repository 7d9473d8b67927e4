"""The embedded cluster, driven through the real CLI as a user would."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from core.errors import SetupError
from geoservice.cli import app
from geoservice.embedded import EmbeddedCluster, find_postgres
from tests.conftest import reachable_tmpdir

runner = CliRunner()


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for var in ("DATABASE_URL", "GEOSERVICE_DATABASE_URL", "GEOSERVICE_PG_BIN_DIR"):
        monkeypatch.delenv(var, raising=False)
    root = reachable_tmpdir("geoservice-embedded-")
    monkeypatch.setenv("GEOSERVICE_DATA_DIR", str(root))
    yield root
    EmbeddedCluster(root / "postgres").destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_start_stop_restart_keeps_data(data_dir: Path) -> None:
    started = runner.invoke(app, ["db", "start"])
    assert started.exit_code == 0, started.output
    cluster = EmbeddedCluster(data_dir / "postgres")
    url = cluster.url()
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SELECT postgis_lib_version()").fetchone()
        conn.execute("CREATE TABLE kept (name text)")
        conn.execute("INSERT INTO kept VALUES ('Ås')")
    assert version is not None

    status = runner.invoke(app, ["db", "status"])
    assert status.exit_code == 0
    assert "yes" in status.output and str(cluster.status().port) in status.output

    stopped = runner.invoke(app, ["db", "stop"])
    assert stopped.exit_code == 0 and "stopped" in stopped.output
    down = runner.invoke(app, ["db", "status"])
    assert down.exit_code == 3
    assert not cluster.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)

    again = runner.invoke(app, ["db", "start"])
    assert again.exit_code == 0, again.output
    with psycopg.connect(cluster.url()) as conn:
        rows = conn.execute("SELECT name FROM kept").fetchall()
    assert rows == [("Ås",)]
    # A second start while running is a no-op that reports the same database.
    assert runner.invoke(app, ["db", "start"]).exit_code == 0
    assert cluster.is_running()
    # The service's role is no superuser; the set-up role is.
    with psycopg.connect(cluster.url()) as conn:
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)
    with psycopg.connect(cluster.admin_url()) as conn:
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (True,)


@pytest.mark.slow
def test_a_cluster_of_an_earlier_version_is_refused_with_the_fix(data_dir: Path) -> None:
    """Clusters made before had one role, the superuser; the service must not use it."""
    cluster = EmbeddedCluster(data_dir / "postgres")
    cluster.start()
    state = json.loads(cluster.state_file.read_text())
    del state["admin_password"]
    cluster.state_file.write_text(json.dumps(state))
    with pytest.raises(SetupError) as refused:
        cluster.start()
    assert refused.value.code == "embedded_db_outdated"
    assert "mv " in refused.value.detail and "db start" in refused.value.detail
    cluster.destroy()


def test_password_file_is_private(data_dir: Path) -> None:
    cluster = EmbeddedCluster(data_dir / "postgres")
    cluster.init()
    assert cluster.state_file.stat().st_mode & 0o077 == 0
    assert "password" in cluster.state_file.read_text()


def _fake_bin_dir(tmp_path: Path, *, with_server: bool) -> Path:
    """A bin directory whose pg_config points at a share dir without PostGIS."""
    real = find_postgres()
    fake = tmp_path / "bin"
    fake.mkdir()
    if with_server:
        for tool in ("initdb", "pg_ctl", "postgres"):
            (fake / tool).symlink_to(real.bin_dir / tool)
        share = tmp_path / "share"
        (share / "extension").mkdir(parents=True)
        pg_config = fake / "pg_config"
        pg_config.write_text(f"#!/bin/sh\necho {share}\n")
        pg_config.chmod(0o755)
    return fake


def test_missing_postgis_names_the_package(tmp_path: Path) -> None:
    real = find_postgres()
    fake = _fake_bin_dir(tmp_path, with_server=True)
    with pytest.raises(SetupError) as info:
        find_postgres(fake)
    assert f"postgresql-{real.major}-postgis-3" in info.value.detail
    assert info.value.code == "postgis_missing"


def test_cli_reports_missing_postgis(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = find_postgres()
    monkeypatch.setenv("GEOSERVICE_PG_BIN_DIR", str(_fake_bin_dir(tmp_path, with_server=True)))
    result = runner.invoke(app, ["db", "start"])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert f"apt-get install postgresql-{real.major}-postgis-3" in message
    assert not (data_dir / "postgres" / "data").exists(), "nothing is created on failure"


def test_missing_postgresql_names_the_packages(tmp_path: Path) -> None:
    with pytest.raises(SetupError) as info:
        find_postgres(_fake_bin_dir(tmp_path, with_server=False))
    assert info.value.code == "postgresql_missing"
    assert "apt-get install postgresql" in info.value.detail
    assert "postgis-3" in info.value.detail


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="root only")
def test_root_with_unreachable_data_dir_explains(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    cluster = EmbeddedCluster(closed / "postgres")
    with pytest.raises(SetupError) as info:
        cluster.init()
    assert info.value.code == "data_dir_unreachable"
    assert "GEOSERVICE_DATA_DIR" in info.value.detail
