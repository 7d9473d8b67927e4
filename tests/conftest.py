"""Shared fixtures: one throwaway PostGIS per test session, one fresh database per test.

The session starts its own cluster with the project's embedded manager unless
``GEOSERVICE_TEST_DATABASE_URL`` names an existing server (the user must be allowed to create
databases and the PostGIS extension). A template database is migrated once with the real
Alembic migrations; each test gets its own copy, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from core.errors import Conflict
from geoservice import migrate
from geoservice.app import create_app
from geoservice.embedded import DB_USER, EmbeddedCluster
from geoservice.settings import Settings

TEMPLATE_DB = "geoservice_test_template"
_counter = itertools.count()

# Speed over durability: the cluster is thrown away after the run.
FAST_CONF = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def with_dbname(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def reachable_tmpdir(prefix: str) -> Path:
    """A temporary folder the ``postgres`` system user can enter (mkdtemp makes 0700 ones)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class Server:
    """A PostGIS server: the superuser for set-up steps, and the role the service uses."""

    admin_url: str
    service_role: str | None  # None: an external server, used with the one role given
    service_password: str | None

    def service_url(self, dbname: str) -> str:
        """The URL the service connects with: a role that owns its database, no superuser."""
        if self.service_role is None:
            return with_dbname(self.admin_url, dbname)
        parts = urlsplit(self.admin_url)
        netloc = f"{self.service_role}:{quote(str(self.service_password), safe='')}@"
        netloc += f"{parts.hostname}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc, path="/" + dbname))


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """A PostGIS server the tests may create databases on."""
    given = os.environ.get("GEOSERVICE_TEST_DATABASE_URL")
    if given:
        yield Server(given, None, None)
        return
    root = reachable_tmpdir("geoservice-test-")
    cluster = EmbeddedCluster(root / "postgres", extra_conf=FAST_CONF)
    try:
        cluster.start()
        state = json.loads(cluster.state_file.read_text())
        yield Server(cluster.admin_url(), DB_USER, str(state["password"]))
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(server: Server) -> str:
    """The superuser's URL (creating and dropping databases)."""
    return server.admin_url


def create_database(server: str, name: str, template: str | None = None) -> str:
    """Create a database owned by the service role, with PostGIS (the privileged set-up
    step), dropping a leftover of the same name; returns the superuser's URL of it."""
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        has_role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_USER,))
        owner = (
            sql.SQL(" OWNER {}").format(sql.Identifier(DB_USER))
            if has_role.fetchone() and urlsplit(server).username != DB_USER
            else sql.SQL("")
        )
        template_sql = (
            sql.SQL(" TEMPLATE {}").format(sql.Identifier(template)) if template else sql.SQL("")
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {}{}{}").format(sql.Identifier(name), template_sql, owner)
        )
    url = with_dbname(server, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def drop_database(server: str, name: str) -> None:
    """Drop a test database, disconnecting anyone still on it."""
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_url(server: Server) -> Iterator[str]:
    """A database migrated to head once per session (by the service role), cloned for every
    test."""
    create_database(server.admin_url, TEMPLATE_DB)
    url = server.service_url(TEMPLATE_DB)
    migrate.upgrade(url)
    yield url
    drop_database(server.admin_url, TEMPLATE_DB)


@pytest.fixture
def empty_database_url(server: Server) -> Iterator[str]:
    """A brand-new database with PostGIS (made by the set-up step) and no migrations, as the
    service role sees it."""
    name = f"geoservice_test_empty_{os.getpid()}_{next(_counter)}"
    create_database(server.admin_url, name)
    yield server.service_url(name)
    drop_database(server.admin_url, name)


@pytest.fixture
def database_url(server: Server, template_url: str) -> Iterator[str]:
    """A private, fully migrated database for one test, as the service role sees it."""
    name = f"geoservice_test_{os.getpid()}_{next(_counter)}"
    create_database(server.admin_url, name, template=TEMPLATE_DB)
    yield server.service_url(name)
    drop_database(server.admin_url, name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for an app on the test's own database, with its own data directory."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        migrate_on_start=False,
        public_reads=True,  # readers such as GDAL and Chromium send no token
        token_cache_s=0,  # a revoked token is refused at once (the cache has its own test)
    )


def authorize(client: TestClient, role: str = "admin", user: str | None = None) -> str:
    """Give the client a token of ``role`` (a user of that name is made); return the token."""
    from geoservice import access

    engine = client.app.state.engine  # type: ignore[attr-defined]
    name = user or f"test-{role}"
    with contextlib.suppress(Conflict):  # the user exists already
        access.add_user(engine, name)
    _, token = access.create_token(engine, name, role)
    client.headers["Authorization"] = f"Bearer {token}"
    return token


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client for an app whose lifespan (engine, pool) really runs."""
    with TestClient(create_app(settings)) as test_client:
        authorize(test_client)
        yield test_client


@pytest.fixture
def live_server_env() -> dict[str, str]:
    """Extra environment for the live server; test modules override this fixture."""
    return {}


@contextlib.contextmanager
def running_server(
    settings: Settings, env: dict[str, str] | None = None, stdout: Any = None
) -> Iterator[Any]:
    """The service run by its own CLI in a separate process; yields (process, base URL).

    A separate process matters: GDAL holds the GIL while it fetches, so a server thread in the
    test process would never answer it; and only a process can be killed mid-request.
    """
    import subprocess
    import sys
    import time

    import httpx

    from geoservice.embedded import free_port

    port = free_port()
    full_env = {
        **os.environ,
        "GEOSERVICE_DATABASE_URL": str(settings.database_url),
        "GEOSERVICE_DATA_DIR": str(settings.data_dir),
        "GEOSERVICE_MAP_BASEMAP": "none",  # nothing leaves the machine in tests
        "GEOSERVICE_PUBLIC_READS": "true",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "geoservice", "serve", "--no-migrate", "--port", str(port)],
        env=full_env,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"the test server did not start: {err[-2000:]}")
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def live_server(settings: Settings, live_server_env: dict[str, str]) -> Iterator[str]:
    """The service in its own process (see :func:`running_server`); yields its base URL."""
    with running_server(settings, live_server_env) as (_, base):
        yield base
