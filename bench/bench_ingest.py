"""Upload throughput and peak memory: our validated import against ``ogr2ogr -f PostgreSQL``.

Both load the same file into the same PostGIS in the same run. ogr2ogr uses COPY, promotes to
multi-polygons, reprojects to EPSG:25833 and builds a GiST index; our import additionally
checks codes, repairs geometries, checks the extent and versions the layer. Each side runs as
its own process so its peak resident memory can be read from the kernel.

Set ``BENCH_INGEST_SIZES`` (default ``100000,1000000``) to change the synthetic sizes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import shapely

from bench.common import throwaway_postgis
from bench.servers import bench_token
from geoservice.embedded import free_port
from geoservice.settings import libpq_url

N50 = Path(__file__).resolve().parents[1] / "data" / "n50-arealdekke-aas" / "ArealdekkeN50.gpkg"
AR5_CODES = np.array([11, 12, 21, 22, 23, 30, 50, 60, 81])


def synthetic_land_cover(n: int, path: Path) -> Path:
    """``n`` 8 m squares with AR5 codes on a grid in Ås, written as a GeoPackage."""
    side = int(np.ceil(np.sqrt(n)))
    idx = np.arange(n)
    x = 255_000 + (idx % side) * 10.0
    y = 6_610_000 + (idx // side) * 10.0
    rng = np.random.default_rng(42)
    frame = gpd.GeoDataFrame(
        {
            "ARTYPE": rng.choice(AR5_CODES, n),
            "ARSKOGBON": rng.choice([11, 12, 13, 14, 15, 98], n),
        },
        geometry=shapely.box(x, y, x + 8, y + 8),
        crs=25833,
    )
    frame.to_file(path, driver="GPKG", layer="arealressurs")
    return path


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float | None]:
    """Seconds and peak RSS (MB, from GNU time; None without it) of one command."""
    gnu_time = "/usr/bin/time" if Path("/usr/bin/time").exists() else None
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
        wrapped = [gnu_time, "-f", "%M", "-o", out.name, *cmd] if gnu_time else cmd
        t0 = time.perf_counter()
        proc = subprocess.run(wrapped, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {proc.stderr[-2000:]}")
        if gnu_time is None:
            return elapsed, None
        return elapsed, int(out.read().strip().splitlines()[-1]) / 1024


class _Service:
    """The service running in its own process, for timing uploads the way GIS staff make them."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "GEOSERVICE_DATABASE_URL": url, "GEOSERVICE_DATA_DIR": str(data_dir)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "geoservice", "serve", "--no-migrate", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {bench_token(url, 'gis')}"}
        for _ in range(300):
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the service did not start")

    def upload(self, path: Path, kind: str, name: str) -> float:
        t0 = time.perf_counter()
        with path.open("rb") as fh:
            response = httpx.post(
                self.base + "/api/layers",
                files={"file": (path.name, fh)},
                data={"kind": kind, "name": name},
                headers=self.headers,
                timeout=600,
            )
        response.raise_for_status()
        return time.perf_counter() - t0

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        return kb / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _case(
    label: str, path: Path, kind: str, url: str, features: int, service: _Service
) -> list[dict[str, Any]]:
    api_s = service.upload(path, kind, f"api {label}")
    api_row = {
        "benchmark": "ingest",
        "subject": f"geoservice POST /api/layers, running service ({label})",
        "features": features,
        "seconds": round(api_s, 2),
        "features_per_s": round(features / api_s),
        "peak_rss_mb": round(service.peak_rss_mb()),
    }
    env = {**os.environ, "GEOSERVICE_DATABASE_URL": url}
    ours_s, ours_mb = _timed(
        [
            sys.executable,
            "-m",
            "geoservice",
            "layers",
            "import",
            str(path),
            "--kind",
            kind,
            "--name",
            f"bench {label}",
            "--json",
        ],
        env,
    )
    rows = [
        api_row,
        {
            "benchmark": "ingest",
            "subject": f"geoservice CLI import, new process ({label})",
            "features": features,
            "seconds": round(ours_s, 2),
            "features_per_s": round(features / ours_s),
            "peak_rss_mb": round(ours_mb) if ours_mb else None,
        },
    ]
    ogr2ogr = shutil.which("ogr2ogr")
    if ogr2ogr is None:
        rows.append({"benchmark": "ingest", "subject": "ogr2ogr missing (apt install gdal-bin)"})
        return rows
    ogr_s, ogr_mb = _timed(
        [
            ogr2ogr,
            "-f",
            "PostgreSQL",
            f"PG:{libpq_url(url)}",
            str(path),
            "-nln",
            f"bench_ogr_{label.replace(' ', '_')}",
            "-nlt",
            "PROMOTE_TO_MULTI",
            "-t_srs",
            "EPSG:25833",
            "-lco",
            "GEOMETRY_NAME=geom",
            "-lco",
            "SPATIAL_INDEX=GIST",
            "-overwrite",
            "--config",
            "PG_USE_COPY",
            "YES",
            "-gt",
            "100000",
        ],
        env,
    )
    rows.append(
        {
            "benchmark": "ingest",
            "subject": f"peer: ogr2ogr COPY ({label})",
            "features": features,
            "seconds": round(ogr_s, 2),
            "features_per_s": round(features / ogr_s),
            "peak_rss_mb": round(ogr_mb) if ogr_mb else None,
        }
    )
    rows.append(
        {
            "benchmark": "ingest",
            "subject": f"ratio CLI/ogr2ogr and API/ogr2ogr time ({label})",
            "ratio": f"{ours_s / ogr_s:.2f} / {api_s / ogr_s:.2f}",
        }
    )
    return rows


def run() -> list[dict[str, Any]]:
    """N50 Ås and synthetic AR5 layers of each size, ours and ogr2ogr side by side."""
    sizes = [int(s) for s in os.environ.get("BENCH_INGEST_SIZES", "100000,1000000").split(",")]
    rows: list[dict[str, Any]] = []
    with throwaway_postgis() as url, tempfile.TemporaryDirectory() as tmp:
        service = _Service(url, Path(tmp) / "data")
        try:
            rows += _case("N50 Ås", N50, "land_cover", url, 1286, service)
            for n in sizes:
                path = synthetic_land_cover(n, Path(tmp) / f"ar5_{n}.gpkg")
                rows += _case(f"synthetic {n}", path, "land_cover", url, n, service)
                path.unlink()
        finally:
            service.stop()
    return rows
