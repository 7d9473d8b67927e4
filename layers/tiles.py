"""Mapbox vector tiles of a layer version, cut by PostGIS (ST_AsMVT), cached on disk.

A layer version never changes once published, so a tile of a version is cached for good
under ``<data_dir>/tiles/v<version_id>/z/x/y.pbf``; re-activating another version changes
the version id in the tile URL, never a cached tile.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import InvalidInput
from layers import codelists
from layers.kinds import KINDS

MVT_LAYER = "features"
TILE_FORMAT = 3
EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 22
WEB_MERCATOR_WIDTH_M = 40_075_016.685578488
# Simplification tolerance in storage-CRS (ground) metres per MVT unit. One web-mercator
# metre is cos(latitude) ground metres: 0.4 is cos(66°), a little finer than needed south
# of the Arctic circle.
GROUND_PER_MERCATOR = 0.4
MIN_SIMPLIFY_M = 1.0

# Tiles of a version read its partition directly (its name is built from an integer): no
# partition pruning to plan on every request. The parts that vary are composed, not edited.
# Features smaller than a tile unit both ways would collapse when snapped to the tile grid:
# they are told apart by their stored bounding box (no reprojection) and kept as one point per
# few tile units (the lowest fid on a grid of their centres), so that a layer with data in a
# tile never comes back empty. Everything else is cut as it is. Rows whose shape is cut away
# (NULL) are skipped by ST_AsMVT itself: filtering them here would cut every shape twice.
# No CTEs: the tile and its search box are expressions of bound values that PostgreSQL folds
# into constants, so it may spread one big tile over parallel workers.
_TILE_SQL = sql.SQL("""
SELECT ST_AsMVT(t, %(name)s, %(extent)s, 'geom', 'fid')
  FROM (SELECT fid, attrs{labels}, geom
          FROM (SELECT f.fid, f.attrs,
                       ST_AsMVTGeom(ST_Transform({geom}, %(tile_srid)s), {envelope},
                                    %(extent)s, %(buffer)s, true) AS geom
                  FROM {table} f
                 WHERE f.geom && {area}{drawable}{small}) AS drawn
       ) AS t
""")
_DRAWABLE = sql.SQL("""
                   AND (ST_XMax(Box2D(f.geom)) - ST_XMin(Box2D(f.geom)) >= %(unit)s
                        OR ST_YMax(Box2D(f.geom)) - ST_YMin(Box2D(f.geom)) >= %(unit)s)""")
_SMALL = sql.SQL("""
                 UNION ALL
                SELECT f.fid, f.attrs,
                       ST_AsMVTGeom(ST_Transform(ST_PointOnSurface(f.geom), %(tile_srid)s),
                                    {envelope}, %(extent)s, 0, true)
                  FROM {table} f
                 WHERE f.version_id = %(version)s
                   AND f.fid = ANY(ARRAY(
                       SELECT min(s.fid)
                         FROM {table} s
                        WHERE s.geom && {area}
                          AND ST_XMax(Box2D(s.geom)) - ST_XMin(Box2D(s.geom)) < %(unit)s
                          AND ST_YMax(Box2D(s.geom)) - ST_YMin(Box2D(s.geom)) < %(unit)s
                        GROUP BY floor((ST_XMin(Box2D(s.geom)) + ST_XMax(Box2D(s.geom)))
                                       / (2 * %(cell)s)),
                                 floor((ST_YMin(Box2D(s.geom)) + ST_YMax(Box2D(s.geom)))
                                       / (2 * %(cell)s))))""")
# Below this many ground metres per tile unit (from z14 in the south of Norway) a feature
# that small is a sliver no one can see: the second scan that keeps such features as points
# is skipped.
MIN_KEPT_UNIT_M = 0.5
# The name of a coded attribute's code, looked up in that attribute's code list (bound).
_LABEL = sql.SQL("{codes}::jsonb ->> (attrs ->> {attribute}) AS {column}")
# The tile (with its buffer) in the storage CRS, kept as its bounding box: ``&&`` only looks
# at boxes, and a densified polygon here would be read again for every feature compared.
_AREA = sql.SQL(
    "ST_Envelope(ST_Transform(ST_Segmentize(ST_Expand({envelope}, %(margin)s), %(seg)s), %(srid)s))"
)
_SIMPLIFIED = sql.SQL("ST_Simplify(f.geom, %(tol)s)")
_MERCATOR_ENVELOPE = sql.SQL("ST_TileEnvelope(%(z)s, %(x)s, %(y)s)")
_GRID_ENVELOPE = sql.SQL("ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, %(tile_srid)s)")
_AS_STORED = sql.SQL("f.geom")
# Tiles reaching beyond this lon/lat box are clipped to it first (UTM blows up far from its
# zone); tiles entirely outside it are empty without asking the database.
NEAR_NORWAY = (-10.0, 50.0, 45.0, 84.0)
_CLAMPED_AREA = sql.SQL("""
    ST_Envelope(ST_Transform(ST_Segmentize(ST_Intersection(
        ST_Transform(ST_Segmentize(ST_Expand({envelope}, %(margin)s), %(seg)s), 4326),
        ST_MakeEnvelope(-10, 50, 45, 84, 4326)), 0.05), %(srid)s))""")


@dataclass(frozen=True)
class Tile:
    """A tile address in the web-mercator tile matrix (XYZ, as Leaflet asks)."""

    z: int
    x: int
    y: int

    def check(self) -> Tile:
        """Refuse addresses outside the tile matrix with a message naming the valid range."""
        if not 0 <= self.z <= MAX_ZOOM:
            raise InvalidInput(f"zoom must be 0–{MAX_ZOOM} (got {self.z}).", code="bad_tile")
        n = 1 << self.z
        if not (0 <= self.x < n and 0 <= self.y < n):
            raise InvalidInput(
                f"At zoom {self.z} tile x and y must be 0–{n - 1} (got {self.x}/{self.y}).",
                code="bad_tile",
            )
        return self

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        """West, south, east, north of the tile in degrees (spherical mercator inverse)."""
        n = 1 << self.z

        def lat(y: int) -> float:
            return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))

        return self.x / n * 360 - 180, lat(self.y + 1), (self.x + 1) / n * 360 - 180, lat(self.y)

    @property
    def size_m(self) -> float:
        """Width of the tile in web-mercator metres."""
        return WEB_MERCATOR_WIDTH_M / (1 << self.z)


@dataclass(frozen=True)
class TileMatrixSet:
    """A square tile pyramid in a projected CRS: level 0 is one tile, each level halves."""

    id: str
    srid: int
    left: float
    top: float
    size0: float  # width of the level-0 tile in the CRS's metres

    def envelope(self, tile: Tile) -> tuple[float, float, float, float]:
        """The tile's corners (minx, miny, maxx, maxy) in the CRS."""
        size = self.size0 / (1 << tile.z)
        x0 = self.left + tile.x * size
        y1 = self.top - tile.y * size
        return x0, y1 - size, x0 + size, y1


WEB_MERCATOR_QUAD = "WebMercatorQuad"
# The tiling Kartverket's caches use for EUREF89 UTM 33 (EPSG:25833): origin −2 500 000,
# 9 045 984; level 0 is one 256-pixel tile of 21 664 m per pixel.
UTM33 = TileMatrixSet("UTM33N", 25833, -2_500_000.0, 9_045_984.0, 5_545_984.0)
MATRIX_SETS = {WEB_MERCATOR_QUAD: None, UTM33.id: UTM33}


def code_labels(kind_name: str, present: frozenset[str] | None = None) -> dict[str, dict[str, str]]:
    """:func:`kind_code_labels`, only for the attributes a version has (``present``): each
    labelled attribute is a property key in every tile, used or not."""
    labels = kind_code_labels(kind_name)
    return labels if present is None else {k: v for k, v in labels.items() if k in present}


@cache
def kind_code_labels(kind_name: str) -> dict[str, dict[str, str]]:
    """For each coded attribute of a kind, its codes' names: tiles carry them beside the codes
    (``arealtype`` 30 and ``arealtype_navn`` "Skog"), so a map can be styled by name."""
    kind = KINDS.get(kind_name)
    labels: dict[str, dict[str, str]] = {}
    for attribute in kind.attributes if kind else ():
        if attribute.codelist:
            codes = codelists.load(attribute.codelist)
            labels[attribute.name] = {str(c): codes.label(c) for c in codes.codes}
    return labels


async def render_tile(
    engine: AsyncEngine,
    version_id: int,
    tile: Tile,
    storage_srid: int,
    labels: dict[str, dict[str, str]] | None = None,
    matrix: str = WEB_MERCATOR_QUAD,
    smallest_feature_m: float | None = None,
) -> bytes:
    """The MVT bytes of one tile: one layer named ``features``, feature id = fid, the typed
    attributes and the names of their codes; web mercator, or a projected tile matrix set."""
    grid = MATRIX_SETS[matrix]
    params: dict[str, object] = {
        "z": tile.z,
        "x": tile.x,
        "y": tile.y,
        "srid": storage_srid,
        "extent": EXTENT,
        "buffer": BUFFER,
        "name": MVT_LAYER,
        "version": version_id,
    }
    if grid is None:
        w, s, e, n = tile.lonlat_bounds()
        bx0, by0, bx1, by1 = NEAR_NORWAY
        if e < bx0 or w > bx1 or n < by0 or s > by1:
            return b""
        size = tile.size_m
        tolerance = size / EXTENT * GROUND_PER_MERCATOR
        # ground metres per tile unit at the tile's middle latitude
        unit = size / EXTENT * math.cos(math.radians((s + n) / 2))
        clamped = w < bx0 or e > bx1 or s < by0 or n > by1
        envelope, area = _MERCATOR_ENVELOPE, _CLAMPED_AREA if clamped else _AREA
        params["tile_srid"] = 3857
    else:
        x0, y0, x1, y1 = grid.envelope(tile)
        size = x1 - x0
        tolerance = unit = size / EXTENT  # ground metres already
        envelope, area = _GRID_ENVELOPE, _AREA
        params.update(x0=x0, y0=y0, x1=x1, y1=y1, tile_srid=grid.srid)
    # One kept point per 16 × 16 tile units of features too small to draw.
    params.update(
        margin=size * BUFFER / EXTENT, seg=size / 8, tol=tolerance, unit=unit, cell=unit * 16
    )
    columns = []
    for i, (attribute, codes) in enumerate(sorted((labels or {}).items())):
        params[f"codes{i}"] = json.dumps(codes, ensure_ascii=False)
        columns.append(
            _LABEL.format(
                codes=sql.Placeholder(f"codes{i}"),
                attribute=sql.Literal(attribute),
                column=sql.Identifier(f"{attribute}_navn"),
            )
        )
    table = sql.Identifier("geoservice", f"feature_v{int(version_id)}")
    box = area.format(envelope=envelope)
    # Features too small to draw exist only where a tile unit is larger than the smallest
    # feature (unknown for versions published before it was recorded).
    keep_small = unit >= MIN_KEPT_UNIT_M and (
        smallest_feature_m is None or smallest_feature_m < unit
    )
    query = _TILE_SQL.format(
        envelope=envelope,
        area=box,
        # below a metre ST_AsMVTGeom's grid snapping is enough
        geom=_AS_STORED if tolerance < MIN_SIMPLIFY_M else _SIMPLIFIED,
        table=table,
        labels=sql.SQL("").join(sql.SQL(", ") + column for column in columns),
        drawable=_DRAWABLE if keep_small else sql.SQL(""),
        small=_SMALL.format(envelope=envelope, table=table, area=box)
        if keep_small
        else sql.SQL(""),
    )
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert isinstance(raw, psycopg.AsyncConnection)
        cursor = await raw.execute(query, params)
        row = await cursor.fetchone()
    data = row[0] if row else None
    return bytes(data or b"")


class TileCache:
    """Tiles of immutable layer versions on disk; writes are atomic renames.

    Empty tiles are never stored (anyone can ask for any number of them), and the cache
    keeps under ``max_bytes``: when a write would pass it, the least recently written tiles
    go until it is at 80 %.
    """

    def __init__(self, root: Path, max_bytes: int = 1 << 30) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._used: int | None = None
        self._lock = threading.Lock()

    def path(self, version_id: int, tile: Tile, matrix: str = WEB_MERCATOR_QUAD) -> Path:
        """Where a tile lives in the cache."""
        # The format number changes when what a tile holds changes (2: code names added;
        # 3: features too small to draw kept as points).
        version_dir = f"v{version_id}-f{TILE_FORMAT}"
        if matrix != WEB_MERCATOR_QUAD:
            version_dir += f"-{matrix.lower()}"
        return self.root / version_dir / str(tile.z) / str(tile.x) / f"{tile.y}.pbf"

    def get(self, version_id: int, tile: Tile, matrix: str = WEB_MERCATOR_QUAD) -> bytes | None:
        """The cached tile, or None."""
        try:
            return self.path(version_id, tile, matrix).read_bytes()
        except FileNotFoundError:
            return None

    def put(
        self, version_id: int, tile: Tile, data: bytes, matrix: str = WEB_MERCATOR_QUAD
    ) -> None:
        """Store a tile; a concurrent writer of the same tile writes the same bytes."""
        if not data or len(data) > self.max_bytes // 2:
            return
        with self._lock:
            if self._used is None:
                self._used = sum(size for _, size, _ in self._files())
            if self._used + len(data) > self.max_bytes:
                self._evict(int(self.max_bytes * 0.8) - len(data))
            self._used += len(data)
        target = self.path(version_id, tile, matrix)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)

    def size(self) -> int:
        """Bytes the cached tiles take now (walks the folder)."""
        return sum(size for _, size, _ in self._files())

    def _files(self) -> list[tuple[str, int, float]]:
        found: list[tuple[str, int, float]] = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = os.path.join(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    stat = os.stat(path)
                    found.append((path, stat.st_size, stat.st_mtime))
        return found

    def _evict(self, keep: int) -> None:
        files = sorted(self._files(), key=lambda f: f[2])
        used = sum(size for _, size, _ in files)
        for path, size, _ in files:
            if used <= keep:
                break
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                used -= size
        self._used = used


async def get_tile(
    engine: AsyncEngine,
    version_id: int,
    tile: Tile,
    storage_srid: int,
    cache: TileCache | None = None,
    labels: dict[str, dict[str, str]] | None = None,
    matrix: str = WEB_MERCATOR_QUAD,
    *,
    smallest_feature_m: float | None = None,
) -> bytes:
    """A tile from the cache, else rendered by PostGIS (and cached)."""
    tile.check()
    if cache is not None and (hit := cache.get(version_id, tile, matrix)) is not None:
        return hit
    data = await render_tile(
        engine, version_id, tile, storage_srid, labels, matrix, smallest_feature_m
    )
    if cache is not None:
        cache.put(version_id, tile, data, matrix)
    return data
