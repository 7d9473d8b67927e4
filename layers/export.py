"""Write a layer version back to a file QGIS opens: GeoJSON or GeoPackage, in a chosen CRS."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from sqlalchemy import Engine, text

from core.errors import InvalidInput
from layers.catalog import get_layer, raster_path, version_id_of
from layers.crs import epsg_of, parse_crs

ExportFormat = Literal["geojson", "gpkg", "tif"]
DRIVERS = {"geojson": ("GeoJSON", ".geojson"), "gpkg": ("GPKG", ".gpkg")}
CHUNK = 50_000


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def export_layer(
    engine: Engine,
    layer_id: int,
    out_dir: Path,
    *,
    fmt: ExportFormat = "gpkg",
    version: int | None = None,
    crs: str | None = None,
    storage_srid: int = 25833,
) -> Path:
    """Write the (active or given) version to ``out_dir`` and return the file's path.

    Columns are the kind's typed attributes followed by the source file's other fields.
    """
    layer = get_layer(engine, layer_id)
    with engine.connect() as conn:
        cog = raster_path(conn, version_id_of(conn, layer_id, version))
    if (cog is not None) != (fmt == "tif"):
        raise InvalidInput(
            f"Layer {layer_id} is a raster; export it as format=tif."
            if cog
            else f"Layer {layer_id} is a vector layer; export it as geojson or gpkg.",
            code="bad_export_format",
        )
    if cog is not None:
        if crs:
            raise InvalidInput(
                "Rasters are exported in their storage CRS; leave crs out.", code="bad_crs"
            )
        target = out_dir / f"{_safe(layer['name'])}.tif"
        shutil.copyfile(cog, target)
        return target
    out_srid = epsg_of(parse_crs(crs), crs) if crs else storage_srid
    driver, suffix = DRIVERS[fmt]
    safe_name = _safe(layer["name"])
    path = out_dir / f"{safe_name}{suffix}"
    with engine.connect() as conn:
        version_id = version_id_of(conn, layer_id, version)
        keys = conn.execute(
            text(
                "SELECT array(SELECT DISTINCT jsonb_object_keys(attrs) FROM geoservice.feature"
                " WHERE version_id = :v), "
                "array(SELECT DISTINCT jsonb_object_keys(props) FROM geoservice.feature"
                " WHERE version_id = :v)"
            ),
            {"v": version_id},
        ).one()
        attr_keys = sorted(keys[0])
        prop_keys = sorted(k for k in keys[1] if k not in attr_keys and k != "fid")
        last_fid = -1
        written = False
        while True:
            rows = conn.execute(
                text(
                    "SELECT fid, attrs, props, ST_AsBinary(ST_Transform(geom, :srid)) AS wkb"
                    "  FROM geoservice.feature"
                    " WHERE version_id = :v AND fid > :after ORDER BY fid LIMIT :n"
                ),
                {"v": version_id, "after": last_fid, "n": CHUNK, "srid": out_srid},
            ).all()
            if not rows:
                break
            last_fid = int(rows[-1].fid)
            records = [
                {
                    "fid": r.fid,
                    **{k: r.attrs.get(k) for k in attr_keys},
                    **{k: r.props.get(k) for k in prop_keys},
                }
                for r in rows
            ]
            frame = gpd.GeoDataFrame(
                pd.DataFrame.from_records(records, columns=["fid", *attr_keys, *prop_keys]),
                geometry=shapely.from_wkb([bytes(r.wkb) for r in rows]),
                crs=f"EPSG:{out_srid}",
            )
            pyogrio.write_dataframe(
                frame,
                path,
                driver=driver,
                layer=safe_name if fmt == "gpkg" else None,
                append=written,
                promote_to_multi=True,
            )
            written = True
    if not written:
        raise ValueError("a published version always has features")
    return path
