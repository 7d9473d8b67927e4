"""Export an assessment's inputs in InVEST Carbon format, so anyone can cross-check it.

A zip with ``carbon_pools.csv`` (the factor table the assessment used, InVEST columns
``lucode,c_above,c_below,c_soil,c_dead`` plus name and source) and ``lulc.tif``: an integer
land-use raster in the storage CRS, on a grid aligned to the resolution, coded with the same
lucodes (AR5 class, bonitet, grunnforhold, mire depth class) the assessment used. Mire valued
from measured depth gets a lucode of its own per footprint (600 900 + index) carrying the stock
per hectare the assessment derived there.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile

import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import from_origin
from sqlalchemy import Engine, text

from analyses.assessment import MEASURED, load_proposal
from analyses.factors import PEAT_CLASS_OFFSET, POOLS, get_table, lucode_for
from core.errors import InvalidInput
from layers.catalog import active_versions

NODATA = 0
MARGIN_M = 50.0
MAX_PIXELS = 25_000_000
# Mire whose stock came from measured depth: this + the footprint's index.
MEASURED_LUCODE = 600_900


def invest_export(
    engine: Engine, proposal_id: int, *, storage_srid: int, resolution: float = 10.0
) -> bytes:
    """The zip, ready to unpack next to an InVEST Carbon datastack."""
    if not 0.5 <= resolution <= 1000:
        raise InvalidInput("resolution must be between 0.5 and 1000 m.", code="bad_resolution")
    with engine.connect() as conn:
        stored = load_proposal(conn, proposal_id)
        result = stored.result
        footprints = stored.footprints(conn, storage_srid)
        wkbs = [w for _, w in footprints]
        geoms = shapely.from_wkb(wkbs)
        x0, y0, x1, y1 = shapely.total_bounds(geoms)
        x0 = math.floor((x0 - MARGIN_M) / resolution) * resolution
        y0 = math.floor((y0 - MARGIN_M) / resolution) * resolution
        x1 = math.ceil((x1 + MARGIN_M) / resolution) * resolution
        y1 = math.ceil((y1 + MARGIN_M) / resolution) * resolution
        width, height = round((x1 - x0) / resolution), round((y1 - y0) / resolution)
        if width * height > MAX_PIXELS:
            raise InvalidInput(
                f"At {resolution} m the raster would have {width * height:,} pixels; choose a "
                "coarser resolution.",
                code="bad_resolution",
            )
        lc_version = result["provenance"]["land_cover_layers"][0]["version_id"]
        envelope = {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "srid": storage_srid}
        land = conn.execute(
            text(
                "SELECT ST_AsBinary(geom) AS wkb, (attrs->>'arealtype')::int AS arealtype, "
                "(attrs->>'skogbonitet')::int AS skogbonitet, "
                "(attrs->>'grunnforhold')::int AS grunnforhold FROM geoservice.feature "
                "WHERE version_id = :v AND geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, :srid)"
            ),
            {"v": lc_version, **envelope},
        ).all()
        peat = conn.execute(
            text(
                "SELECT ST_AsBinary(p.geom) AS wkb, p.attrs->>'depth_class' AS depth_class "
                "FROM geoservice.feature p WHERE p.version_id = ANY(:peat) "
                "AND p.attrs->>'depth_class' IN ('grunn', 'djup') AND ST_Dimension(p.geom) = 2 "
                "AND p.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, :srid)"
            ),
            {**envelope, "peat": [v.version_id for v in active_versions(conn, "peat")]},
        ).all()
    table = get_table(engine, int(result["provenance"]["factor_table"]["id"]))
    transform = from_origin(x0, y1, resolution, resolution)
    shapes_lc = []
    for r in land:
        if r.arealtype is None:
            continue
        code = lucode_for(r.arealtype, r.skogbonitet, r.grunnforhold, "ukjent", table.factors)
        if code is not None:
            shapes_lc.append((shapely.from_wkb(bytes(r.wkb)), code))
    lulc = (
        rasterize(
            shapes_lc, out_shape=(height, width), transform=transform, fill=NODATA, dtype="int32"
        )
        if shapes_lc
        else np.full((height, width), NODATA, dtype="int32")
    )
    for depth_class in ("grunn", "djup"):
        polys = [shapely.from_wkb(bytes(p.wkb)) for p in peat if p.depth_class == depth_class]
        code = 6000 + PEAT_CLASS_OFFSET[depth_class]
        if not polys or code not in table.factors:
            continue
        mask = rasterize(
            [(g, 1) for g in polys],
            out_shape=(height, width),
            transform=transform,
            fill=0,
            dtype="uint8",
        ).astype(bool)
        lulc[mask & (lulc == 6000)] = code
    # Mire valued from measured depth: one lucode per footprint, with the stock per hectare
    # the assessment derived there (depth × NINA density), on that footprint's mire pixels.
    rows: dict[int, list[object]] = {}
    by_name = {fp["name"]: fp for fp in result["footprints"]}
    mire_pixels = (lulc >= 6000) & (lulc < 6010)
    for i, ((name, _), geom) in enumerate(zip(footprints, geoms, strict=True)):
        entry = next(
            (
                c
                for c in by_name.get(name, {}).get("classes", [])
                if c.get("peat_depth_class") == MEASURED and c.get("factor") and c["area_ha"]
            ),
            None,
        )
        if entry is None:
            continue
        code = MEASURED_LUCODE + i
        inside = rasterize(
            [(geom, 1)], out_shape=(height, width), transform=transform, fill=0, dtype="uint8"
        ).astype(bool)
        lulc[inside & mire_pixels] = code
        per_ha = [entry["stock_t_c"][p]["central"] / entry["area_ha"] for p in POOLS]
        f = entry["factor"]
        rows[code] = [code, *per_ha, f"{f['name']} ({name})", f["status"], f["source"]]
    used = sorted(int(c) for c in np.unique(lulc) if c != NODATA)
    pools = io.StringIO()
    writer = csv.writer(pools, lineterminator="\n")
    writer.writerow(["lucode", *POOLS, "name", "status", "source"])
    for code in used:
        if code in rows:
            writer.writerow(rows[code])
            continue
        f = table.factors[code]
        writer.writerow([code, *(getattr(f, p) for p in POOLS), f.name, f.status, f.source])
    tif = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            width=width,
            height=height,
            count=1,
            dtype="int32",
            crs=f"EPSG:{storage_srid}",
            transform=transform,
            nodata=NODATA,
            compress="deflate",
        ) as dst:
            dst.write(lulc, 1)
        tif.write(mem.read())
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": name},
                "geometry": shapely.geometry.mapping(g),
            }
            for (name, _), g in zip(footprints, geoms, strict=True)
        ],
    }
    readme = (
        f"InVEST Carbon inputs for assessment {proposal_id}.\n"
        f"lulc.tif: lucodes on a {resolution:g} m grid in EPSG:{storage_srid} (0 = no data).\n"
        "carbon_pools.csv: t C/ha per pool from factor table "
        f"{table.name} version {table.version} (sha256 {table.sha256}).\n"
        f"lucodes {MEASURED_LUCODE} + n: mire whose stock the assessment derived from measured "
        "peat depth in footprint n (0 = the proposal).\n"
        "footprints.geojson: the footprints, in the same CRS; sum the stock over them to "
        "compare with the assessment's stock_t_c.\n"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("carbon_pools.csv", pools.getvalue())
        zf.writestr("lulc.tif", tif.getvalue())
        zf.writestr("footprints.geojson", json.dumps(collection))
        zf.writestr("README.txt", readme)
    return out.getvalue()
