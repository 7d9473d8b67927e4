"""No request can hold the machine: bodies are judged by their headers before a byte is
read, counted while they stream, and request geometries are bounded before any work.

Run against the service in its own process, over a raw socket, so that what the server
reads, keeps and answers can be seen from outside.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import authorize, running_server
from tests.test_restoration import baseline  # noqa: F401  (fixture)

UPLOAD_MB = 4
JSON_MB = 1


@pytest.fixture
def limited(settings: Any, client: TestClient, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A service in its own process with small limits and a temporary folder of its own."""
    token = authorize(client, "admin")
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {
        "GEOSERVICE_MAX_UPLOAD_MB": str(UPLOAD_MB),
        "GEOSERVICE_MAX_JSON_MB": str(JSON_MB),
        "GEOSERVICE_PUBLIC_READS": "false",
        "TMPDIR": str(spool),
    }
    with running_server(settings, env) as (proc, base):
        yield {"base": base, "token": token, "pid": proc.pid, "spool": spool}


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def _head_only(base: str, path: str, headers: dict[str, str]) -> tuple[int, float]:
    """Send only the request head (promising a body) and read the answer: (status, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", _port(base)), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        sock.sendall((head + "\r\n").encode())
        answer = sock.recv(65536).decode("latin-1")
    return int(answer.split()[1]), time.monotonic() - started


def _stream(
    base: str, path: str, headers: dict[str, str], total: int, prefix: bytes = b""
) -> tuple[int, int]:
    """Send a chunked body (``prefix``, then ``total`` bytes of filler) until the server
    answers: (status, bytes sent)."""
    sent = 0
    chunk = b"0" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", _port(base)), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        sock.sendall((head + "\r\n").encode())
        if prefix:
            sock.sendall(b"%x\r\n" % len(prefix) + prefix + b"\r\n")
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n" not in answer:
                piece = sock.recv(65536)
                if not piece:
                    break
                answer += piece
    return int(answer.split()[1]), sent


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _spooled_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def test_no_token_no_body_read(limited: dict[str, Any], database_url: str) -> None:
    base = limited["base"]
    huge = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": "2600000000"}
    status, seconds = _head_only(base, "/api/layers", huge)
    assert status == 401 and seconds < 2  # answered from the head: no body byte was sent
    status, seconds = _head_only(
        base, "/api/layers", {**huge, "Authorization": f"Bearer {limited['token']}"}
    )
    assert status == 413 and seconds < 2
    status, _ = _head_only(
        base,
        "/api/proposals",
        {
            "Content-Type": "application/json",
            "Content-Length": str(122 * 2**20),
            "Authorization": f"Bearer {limited['token']}",
        },
    )
    assert status == 413
    # Refused requests and unknown routes never reach the audit log.
    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT count(*) FROM geoservice.audit_log").fetchone()
    for _ in range(20):
        refused = httpx.post(base + "/api/" + "x" * 60_000, timeout=10)
        assert refused.status_code in (401, 414, 431)
    with psycopg.connect(database_url) as conn:
        after = conn.execute("SELECT count(*) FROM geoservice.audit_log").fetchone()
    assert after == before


def test_streamed_bodies_are_cut_at_the_limit(limited: dict[str, Any]) -> None:
    base, pid = limited["base"], limited["pid"]
    auth = {"Authorization": f"Bearer {limited['token']}"}
    rss_before = _rss_mb(pid)
    form = (
        b'--x\r\nContent-Disposition: form-data; name="kind"\r\n\r\nland_cover\r\n'
        b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.geojson"\r\n'
        b"Content-Type: application/geo+json\r\n\r\n"
    )
    status, sent = _stream(
        base,
        "/api/layers",
        {**auth, "Content-Type": "multipart/form-data; boundary=x"},
        total=200 * 2**20,
        prefix=form,
    )
    assert status == 413
    # What reached the server: the limit, plus what socket buffers hold on both sides.
    assert sent < (UPLOAD_MB + 16) * 2**20, sent / 2**20
    assert _spooled_mb(limited["spool"]) < UPLOAD_MB + 2  # and nothing is left behind
    status, sent = _stream(
        base, "/api/proposals", {**auth, "Content-Type": "application/json"}, total=122 * 2**20
    )
    assert status == 413
    assert sent < (JSON_MB + 16) * 2**20
    assert _rss_mb(pid) - rss_before < 60, "memory grew with the body"
    health = httpx.get(base + "/healthz", timeout=5)
    assert health.status_code == 200


def zigzag(vertices: int, x0: float, y0: float) -> dict[str, Any]:
    """A ring that crosses itself at every other vertex (repair costs vertices²)."""
    half = vertices // 2
    top = [[x0 + i * 2.0, y0 + (i % 2) * 400.0] for i in range(half)]
    bottom = [[x0 + i * 2.0, y0 + (1 - i % 2) * 400.0] for i in range(half)][::-1]
    return {"type": "Polygon", "coordinates": [[*top, *bottom, top[0]]]}


@pytest.mark.usefixtures("baseline")
def test_request_geometries_are_bounded(client: TestClient, database_url: str) -> None:
    x0, y0 = 262_000.0, 6_649_000.0
    timings = {}
    for vertices in (2_000, 20_000, 200_000):
        started = time.monotonic()
        response = client.post(
            "/api/restoration/progress",
            json={"geometry": zigzag(vertices, x0, y0), "crs": "EPSG:25833"},
        )
        timings[vertices] = time.monotonic() - started
        if vertices <= 5_000:
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 422, response.text
            body = response.json()
            expected = "geometry_needs_repair" if vertices <= 100_000 else "geometry_too_complex"
            assert body["error"] == expected
            assert "Fix Geometries" in body["detail"] or "Simplify" in body["detail"]
    assert timings[200_000] < 5, timings
    # Nothing of ours is still running in the database afterwards.
    with psycopg.connect(database_url) as conn:
        busy = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND application_name = 'geoservice' AND pid <> pg_backend_pid()"
        ).fetchone()
    assert busy == (0,)
    nested: dict[str, Any] = zigzag(8, x0, y0)
    for _ in range(10):
        nested = {"type": "GeometryCollection", "geometries": [nested]}
    deep = client.post("/api/restoration/progress", json={"geometry": nested, "crs": "EPSG:25833"})
    assert deep.status_code == 422 and deep.json()["error"] == "geometry_too_deep"
    body = json.dumps({"geometry": zigzag(200_000, x0, y0)})
    assert len(body) < 16 * 2**20  # the limit is the geometry's, not the body's
