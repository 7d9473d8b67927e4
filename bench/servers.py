"""Start HTTP servers for benchmarks: ours (the real CLI) and peers in their own venv."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from geoservice.embedded import free_port

PEERS_VENV = Path(__file__).resolve().parent / ".peers"
PEER_PACKAGES = ("tipg>=1.0,<2", "uvicorn")


def peer_python() -> Path:
    """Python of a separate venv holding the peers (never the project's dependencies)."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".packages"
    wanted = " ".join(PEER_PACKAGES)
    if not python.exists() or (stamp.read_text() if stamp.exists() else "") != wanted:
        print(f"  installing peers into {PEERS_VENV}: {wanted}", flush=True)
        venv.create(PEERS_VENV, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
        stamp.write_text(wanted)
    return python


@contextmanager
def http_server(cmd: list[str], env: dict[str, str], ready_path: str) -> Iterator[str]:
    """Run a server command with ``{port}`` filled in; yield its base URL once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in cmd],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(base + ready_path, timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"{cmd[0]} did not start: {err[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


OUR_CMD = [sys.executable, "-m", "geoservice", "serve", "--no-migrate", "--port", "{port}"]


def our_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """Environment for our service: the database, a data dir and GEOSERVICE_* settings.

    Reads are public unless a benchmark says otherwise, as peers such as tipg serve them.
    """
    settings = {"public_reads": "true", **settings}
    return {
        "GEOSERVICE_DATABASE_URL": database_url,
        "GEOSERVICE_DATA_DIR": str(data_dir),
        **{f"GEOSERVICE_{k.upper()}": v for k, v in settings.items()},
    }


def bench_token(database_url: str, role: str) -> str:
    """A fresh API token of ``role`` for a benchmark's requests."""
    from geoservice import access
    from geoservice.database import create_db_engine
    from geoservice.settings import Settings

    engine = create_db_engine(database_url, Settings(database_url=database_url))
    try:
        name = f"bench-{role}"
        if not any(t["user"] == name for t in access.list_tokens(engine)):
            access.add_user(engine, name)
        return access.create_token(engine, name, role)[1]
    finally:
        engine.dispose()
