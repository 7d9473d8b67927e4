"""GDAL locked down for untrusted files, once for the whole process.

GDAL picks a reader from a file's content, and several of its readers are indirections:
a VRT or GDALG file names other files or URLs, WFS/OAPIF drivers fetch over the network.
Any of them turns an upload into a way to read the server's files or make it fetch URLs.
So the process keeps only the vector drivers for the formats we accept (pyogrio's GDAL),
every upload's signature must match the format its name claims (``layers.reader``), rasters
are opened with the GTiff driver only (``layers.rasters``), and these options switch off
network access and VRT indirection in both bundled GDALs (rasterio's and pyogrio's read
configuration from the environment on every lookup).
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from pathlib import Path

# The drivers pyogrio's GDAL keeps: the accepted upload formats and the export formats.
VECTOR_DRIVERS = frozenset(
    {"GeoJSON", "GPKG", "ESRI Shapefile", "FlatGeobuf", "GML", "CSV", "OpenFileGDB"}
)
RASTER_DRIVER = "GTiff"

# Switched off process-wide. GDAL and PROJ read these from the environment at every use.
SAFE_CONFIG = {
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    "GDAL_VRT_ENABLE_RAWRASTERBAND": "NO",
    "GDAL_ALLOW_REMOTE_RESOURCE_TO_ACCESS_LOCAL_FILE": "NO",
    "GML_DOWNLOAD_SCHEMA": "NO",
    "GML_DOWNLOAD_WFS_SCHEMA": "NO",
    "GML_SKIP_RESOLVE_ELEMS": "ALL",
    # /vsicurl/ and friends may open only a file name nothing can have.
    "CPL_VSIL_CURL_ALLOWED_FILENAME": "/nonexistent/geoservice-no-network",
    "CPL_ALLOW_VSISTDIN": "NO",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "1",
    "PROJ_NETWORK": "OFF",
}

_lock = threading.Lock()
_done = False


def harden() -> None:
    """Apply the configuration and unregister every other vector driver (idempotent).

    Called where a process starts (the app factory, the CLI) and by the modules that open
    files, so no path reaches GDAL before it has run.
    """
    global _done
    with _lock:
        if _done:
            return
        os.environ.update(SAFE_CONFIG)
        import pyogrio
        from pyogrio import _ogr

        skip = sorted(d for d in pyogrio.list_drivers() if d not in VECTOR_DRIVERS)
        # GDAL_SKIP is applied when drivers are registered; registering again applies it to
        # the drivers pyogrio registered at import. Names with spaces need the comma form.
        pyogrio.set_gdal_config_options({"GDAL_SKIP": ",".join(skip)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _ogr._register_drivers()
        left = set(pyogrio.list_drivers())
        if not left <= VECTOR_DRIVERS:
            raise RuntimeError(f"GDAL drivers could not be switched off: {sorted(left)}")
        _done = True


def registered_vector_drivers() -> set[str]:
    """What pyogrio's GDAL can open now (for tests and /healthz-like checks)."""
    import pyogrio

    return set(pyogrio.list_drivers())


def gdal_message(exc: BaseException, path: Path, shown: str) -> str:
    """GDAL's first line, with the server's paths replaced by the name the user knows."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    for where in (str(path), str(path.parent)):
        first = first.replace(where, shown)
    return re.sub(r"(/[^\s'\"/]+)+/?", "<file>", first)
