"""Raster layers: a GeoTIFF in, a Cloud-Optimised GeoTIFF in the storage CRS out.

The file lives under the data directory; its metadata, value statistics and footprint are a
layer version in PostGIS like any other. Values are read block by block, so memory does not
grow with the raster.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS as RioCRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from sqlalchemy import Engine

from core.database import psycopg_transaction
from core.errors import InvalidInput
from layers import crs
from layers.catalog import lock_layer
from layers.gdal_env import RASTER_DRIVER, gdal_message, harden
from layers.kinds import LayerKind
from layers.result import ImportResult

harden()

RASTER_SUFFIXES = {".tif", ".tiff"}
CARBON_POOLS = ("c_above", "c_below", "c_dead", "c_soil")
DEFAULT_CARBON_POOLS = ("c_above", "c_below")  # biomass maps (e.g. from SR16) are the usual case


def _stats(dataset: Any) -> dict[str, float | int | None]:
    """Min, max, mean and count of valid pixels of band 1, one block at a time."""
    total, count = 0.0, 0
    low, high = math.inf, -math.inf
    for _, window in dataset.block_windows(1):
        data = dataset.read(1, window=window, masked=True)
        values = data.compressed()
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        low = min(low, float(values.min()))
        high = max(high, float(values.max()))
        total += float(values.sum(dtype=np.float64))
        count += int(values.size)
    if count == 0:
        return {"min": None, "max": None, "mean": None, "valid_pixels": 0}
    return {"min": low, "max": high, "mean": total / count, "valid_pixels": count}


def import_raster(
    engine: Engine,
    path: Path,
    *,
    kind: LayerKind,
    name: str,
    requested_crs: str | None,
    licence: str | None,
    uploader: str | None,
    check_extent: bool,
    checksum: str,
    filename: str,
    storage_srid: int,
    data_dir: Path,
    pools: tuple[str, ...] = (),
) -> ImportResult:
    """Validate, convert to COG and publish a raster as the layer's next version."""
    if kind.name == "carbon_density":
        pools = pools or DEFAULT_CARBON_POOLS
        unknown = [p for p in pools if p not in CARBON_POOLS]
        if unknown:
            raise InvalidInput(
                f"Unknown carbon pool(s) {', '.join(unknown)}; a carbon density raster covers "
                f"one or more of {', '.join(CARBON_POOLS)}.",
                code="bad_pools",
            )
    try:
        src = rasterio.open(path, driver=RASTER_DRIVER)  # the GTiff reader, nothing else
    except (RasterioIOError, RasterioError) as exc:
        raise InvalidInput(
            f"{filename} could not be read as a GeoTIFF ({gdal_message(exc, path, filename)}). "
            "The file may be truncated "
            "or corrupt.",
            code="corrupt_file",
        ) from exc
    with src:
        if src.count != 1:
            raise InvalidInput(
                f"{filename} has {src.count} bands; a {kind.name} raster has one band of "
                f"{kind.unit}.",
                code="bad_raster",
            )
        try:
            stats = _stats(src)  # reads every block: a truncated file fails here
        except (RasterioIOError, RasterioError) as exc:
            raise InvalidInput(
                f"{filename} could not be read to the end "
                f"({gdal_message(exc, path, filename)}); it may be truncated.",
                code="corrupt_file",
            ) from exc
        file_crs = src.crs.to_wkt() if src.crs else None
        source = crs.resolve_source_crs(file_crs, requested_crs)
        source_rio = RioCRS.from_epsg(source.srid)
        if stats["valid_pixels"] == 0:
            raise InvalidInput(f"{filename} has no valid pixels (all nodata).", code="empty_file")
        if stats["min"] is not None and float(stats["min"]) < 0:
            raise InvalidInput(
                f"{filename} has negative values (down to {stats['min']:g}); {kind.unit} "
                "cannot be negative. Set the nodata value if negative numbers mark missing data.",
                code="bad_raster_values",
            )
        rasters = data_dir / "rasters"
        rasters.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkstemp(dir=rasters, suffix=".tif")[1])
        try:
            with WarpedVRT(
                src,
                src_crs=source_rio,
                crs=RioCRS.from_epsg(storage_srid),
                resampling=Resampling.bilinear,
            ) as vrt:
                rasterio.shutil.copy(
                    vrt, tmp, driver="COG", compress="DEFLATE", overview_resampling="average"
                )
            with rasterio.open(tmp) as cog:
                bounds = cog.bounds
                info = {
                    "width": cog.width,
                    "height": cog.height,
                    "resolution": list(cog.res),
                    "dtype": cog.dtypes[0],
                    "nodata": cog.nodata,
                    "unit": kind.unit,
                    "pools": list(pools),
                    "resampling": "none" if source.srid == storage_srid else "bilinear",
                    "source_resolution": list(src.res),
                    **stats,
                }
            return _publish(
                engine,
                tmp=tmp,
                kind=kind,
                name=name,
                source=source,
                info=info,
                bounds=(bounds.left, bounds.bottom, bounds.right, bounds.top),
                licence=licence,
                uploader=uploader,
                check_extent=check_extent,
                checksum=checksum,
                filename=filename,
                storage_srid=storage_srid,
                rasters=rasters,
            )
        finally:
            tmp.unlink(missing_ok=True)


def _publish(
    engine: Engine,
    *,
    tmp: Path,
    kind: LayerKind,
    name: str,
    source: crs.SourceCrs,
    info: dict[str, Any],
    bounds: tuple[float, float, float, float],
    licence: str | None,
    uploader: str | None,
    check_extent: bool,
    checksum: str,
    filename: str,
    storage_srid: int,
    rasters: Path,
) -> ImportResult:
    """Record the version; the file is moved into place before the transaction commits."""
    final: Path | None = None
    try:
        with psycopg_transaction(engine) as conn:
            cur = conn.cursor()
            if check_extent:
                centre = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
                inside = crs.inside_norway([centre[0]], [centre[1]], storage_srid)
                if not inside or not inside[0]:
                    raise InvalidInput(
                        f"{filename} does not lie in Norway when read as {source.label}: "
                        f"its bounds are ({', '.join(f'{v:.6g}' for v in bounds)}) in "
                        f"EPSG:{storage_srid}. "
                        "Check the CRS of the file (or turn the extent check off).",
                        code="outside_norway",
                    )
            layer_id, version = lock_layer(cur, kind, name)
            row = cur.execute(
                """
                INSERT INTO geoservice.layer_version
                    (layer_id, version, uploader, source_filename, source_format, source_sha256,
                     source_crs, storage_srid, licence, source_feature_count, feature_count,
                     geometry_type, bbox, extent_checked, raster, repairs)
                VALUES (%s, %s, %s, %s, 'GeoTIFF', %s, %s, %s, %s, 0, 0, 'Raster',
                        ST_MakeEnvelope(%s, %s, %s, %s, %s), %s, %s, '{}')
                RETURNING id
                """,
                (
                    layer_id,
                    version,
                    uploader,
                    filename,
                    checksum,
                    source.label,
                    storage_srid,
                    licence,
                    *bounds,
                    storage_srid,
                    check_extent,
                    json.dumps(info),
                ),
            ).fetchone()
            assert row is not None
            version_id = int(row[0])
            final = rasters / f"layer{layer_id}_v{version}_{version_id}.tif"
            tmp.replace(final)
            cur.execute(
                "UPDATE geoservice.layer_version SET storage_path = %s WHERE id = %s",
                (str(final), version_id),
            )
            cur.execute(
                "UPDATE geoservice.layer SET active_version_id = %s WHERE id = %s",
                (version_id, layer_id),
            )
    except BaseException:
        if final is not None:  # the transaction rolled back: no version points at the file
            final.unlink(missing_ok=True)
        raise
    return ImportResult(
        layer_id=layer_id,
        name=name,
        kind=kind.name,
        version=version,
        version_id=version_id,
        feature_count=0,
        source_feature_count=0,
        bbox=list(bounds),
        storage_crs=f"EPSG:{storage_srid}",
        source_crs=source.label,
        source_sha256=checksum,
        field_map={},
        repairs={},
        unknown_codes={},
        geometry_type="Raster",
        raster=info,
    )


def parse_pools(text: str | None) -> tuple[str, ...]:
    """``"c_above, c_below"`` -> ``("c_above", "c_below")``; empty means the default."""
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())
