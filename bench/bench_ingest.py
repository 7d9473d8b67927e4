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
import statistics
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
from core.database import libpq_url
from geoservice.embedded import free_port

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
        # One client for every upload, as QGIS or a script keeps one: creating an httpx
        # client costs 25-50 ms (it loads the CA bundle), an eighth of an N50 upload.
        self.client = httpx.Client(headers=self.headers, timeout=600)
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
            response = self.client.post(
                self.base + "/api/layers",
                files={"file": (path.name, fh)},
                data={"kind": kind, "name": name},
            )
        response.raise_for_status()
        return time.perf_counter() - t0

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        return kb / 1024

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _ogr2ogr_cmd(ogr2ogr: str, url: str, path: Path, table: str) -> list[str]:
    return [
        ogr2ogr,
        "-f",
        "PostgreSQL",
        f"PG:{libpq_url(url)}",
        str(path),
        "-nln",
        table,
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
    ]


def _row(subject: str, features: int, seconds: list[float], mb: float | None) -> dict[str, Any]:
    mid = statistics.median(seconds)
    return {
        "benchmark": "ingest",
        "subject": subject,
        "features": features,
        "runs": len(seconds),
        "seconds": round(mid, 3 if mid < 10 else 2),
        "range_s": f"{min(seconds):.3g}–{max(seconds):.3g}",
        "features_per_s": round(features / mid),
        "peak_rss_mb": round(mb) if mb else None,
    }


def _case(
    label: str,
    path: Path,
    kind: str,
    url: str,
    features: int,
    service: _Service,
    repeats: int,
) -> list[dict[str, Any]]:
    """Each side ``repeats`` times, interleaved so that drift on the machine hits all three;
    medians are compared."""
    ogr2ogr = shutil.which("ogr2ogr")
    env = {**os.environ, "GEOSERVICE_DATABASE_URL": url}
    slug = label.replace(" ", "_")
    api: list[float] = []
    cli: list[float] = []
    ogr: list[float] = []
    cli_mb: list[float] = []
    ogr_mb: list[float] = []
    for _ in range(repeats):
        api.append(service.upload(path, kind, f"api {label}"))
        cmd = [sys.executable, "-m", "geoservice", "layers", "import", str(path)]
        seconds, mb = _timed([*cmd, "--kind", kind, "--name", f"bench {label}", "--json"], env)
        cli.append(seconds)
        cli_mb += [mb] if mb else []
        if ogr2ogr is not None:
            seconds, mb = _timed(_ogr2ogr_cmd(ogr2ogr, url, path, f"bench_ogr_{slug}"), env)
            ogr.append(seconds)
            ogr_mb += [mb] if mb else []
    rows = [
        _row(
            f"geoservice POST /api/layers, running service ({label})",
            features,
            api,
            service.peak_rss_mb(),
        ),
        _row(
            f"geoservice CLI import, new process ({label})",
            features,
            cli,
            max(cli_mb) if cli_mb else None,
        ),
    ]
    if not ogr:
        rows.append({"benchmark": "ingest", "subject": "ogr2ogr missing (apt install gdal-bin)"})
        return rows
    rows.append(
        _row(f"peer: ogr2ogr COPY ({label})", features, ogr, max(ogr_mb) if ogr_mb else None)
    )
    peer = statistics.median(ogr)
    rows.append(
        {
            "benchmark": "ingest",
            "subject": f"ratio of medians CLI/ogr2ogr and API/ogr2ogr time ({label})",
            "ratio": f"{statistics.median(cli) / peer:.2f} / {statistics.median(api) / peer:.2f}",
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
            rows += _case("N50 Ås", N50, "land_cover", url, 1286, service, repeats=7)
            for n in sizes:
                path = synthetic_land_cover(n, Path(tmp) / f"ar5_{n}.gpkg")
                repeats = 5 if n <= 100_000 else 2
                rows += _case(f"synthetic {n}", path, "land_cover", url, n, service, repeats)
                path.unlink()
        finally:
            service.stop()
    return rows
