"""/healthz over HTTP on loopback against the same database queries run directly.

The peer is the floor: what the health check costs without the web stack. The ratio is the
overhead FastAPI + uvicorn + the HTTP round trip add.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import uvicorn

from bench.common import throwaway_postgis, time_calls
from geoservice.app import create_app
from geoservice.database import create_db_engine, database_info
from geoservice.embedded import free_port
from geoservice.settings import Settings

N = 500


def run() -> list[dict[str, Any]]:
    """Measure both sides in the same run on the same database."""
    with throwaway_postgis() as url:
        settings = Settings(database_url=url, migrate_on_start=False)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                assert client.get("/healthz").json()["status"] == "ok"
                http = time_calls(lambda: client.get("/healthz"), N)
        finally:
            server.should_exit = True
            thread.join()
        engine = create_db_engine(url, settings)
        direct = time_calls(lambda: database_info(engine), N)
        engine.dispose()
    return [
        {"benchmark": "healthz", "subject": "geoservice HTTP /healthz", **http},
        {"benchmark": "healthz", "subject": "peer: same queries, direct SQLAlchemy", **direct},
        {
            "benchmark": "healthz",
            "subject": "ratio HTTP / direct (p50)",
            "ratio": round(http["p50_ms"] / direct["p50_ms"], 2),
        },
    ]
