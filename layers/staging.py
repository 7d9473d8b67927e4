"""Arrow batches into a PostgreSQL staging table over COPY, without a Python loop per feature.

Each batch is turned into CSV by Arrow's C++ writer (geometry as hex WKB) and streamed with
COPY. Source fields keep their types (numbers stay numbers) in positional staging columns
``c0, c1, ...``; the original names travel alongside so SQL can rebuild the properties.

The thread that encodes a batch also checks its geometries with GEOS (through shapely, which
releases the GIL): whether each is empty and whether it is valid. That runs while PostgreSQL
parses the previous batch, on the core the database would otherwise leave idle, instead of
in the load that follows (where ST_IsValid was 40 % of the time). Repairs stay in PostGIS.
"""

from __future__ import annotations

import binascii
import ctypes
import io
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from queue import Empty, Queue
from typing import Any, TypeVar

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from psycopg import sql

from core.errors import InvalidInput
from layers.reader import FID_COLUMN, GEOM_COLUMN

RELEASE_EVERY = 16 << 20  # bytes of CSV sent between hand-backs of freed memory
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")
T = TypeVar("T")


@dataclass(frozen=True)
class StageColumn:
    """One source field in the staging table."""

    source: str  # the field's name in the file
    column: str  # c0, c1, ...
    pg_type: str


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "numeric" if arrow_type == pa.uint64() else "bigint"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_decimal(arrow_type):
        return "numeric"
    return "text"


def hex_wkb(array: pa.Array) -> pa.Array:
    """Binary WKB -> hex strings, vectorised (PostgreSQL reads hex WKB as geometry)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_large_binary(array.type):
        array = array.cast(pa.binary())
    if len(array) == 0:
        return pa.array([], pa.string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    data_buf = array.buffers()[2]
    # One C call over the whole data buffer: six times faster than numpy table lookups.
    hexed = binascii.hexlify(memoryview(data_buf)[offsets[0] : offsets[-1]]) if data_buf else b""
    new_offsets = ((offsets - offsets[0]) * 2).astype(np.int32)
    validity = array.buffers()[0] if array.null_count else None
    if validity is not None and array.offset:  # a slice: its nulls start mid-bitmap
        validity = pc.is_valid(array).buffers()[1]
    return pa.StringArray.from_buffers(
        len(array),
        pa.py_buffer(new_offsets.tobytes()),
        pa.py_buffer(hexed),
        validity,
        array.null_count,
        0,
    )


def _as_csv_column(array: pa.Array, pg_type: str) -> pa.Array:
    """Make a column writable as CSV and readable by PostgreSQL as ``pg_type``."""
    if pa.types.is_floating(array.type):
        # NaN and infinities have no JSON form; treat them as missing values.
        bad = pc.or_(pc.is_nan(array), pc.is_inf(array))
        return pc.if_else(bad, pa.scalar(None, array.type), array)
    if pg_type != "text" or pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        return hex_wkb(array)
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in array.to_pylist()],
            pa.string(),
        )


class Stager:
    """Creates the staging table for a source schema and COPYs batches into it."""

    def __init__(
        self,
        table: sql.Composable,
        fields: Sequence[tuple[str, pa.DataType]],
        lower: Iterable[str],
    ) -> None:
        self.table = table
        self.columns = [
            StageColumn(name, f"c{i}", _pg_type(dtype)) for i, (name, dtype) in enumerate(fields)
        ]
        # Text code-list fields get a lower-cased twin, so matching ignores case everywhere
        # (PostgreSQL's lower() only folds ASCII under the C locale).
        self.lowered = {name: f"l{i}" for i, name in enumerate(lower)}
        self.rows = 0
        self.geometries = GeometrySummary()

    def column(self, source: str) -> StageColumn:
        """The staging column of a source field."""
        return next(c for c in self.columns if c.source == source)

    def create(self, cur: psycopg.Cursor[Any]) -> None:
        """An unlogged table created in the upload's transaction and dropped before commit.

        Not a TEMP table: parallel workers cannot read those, and the load that follows is
        worth parallelising. If the upload fails, the transaction takes the table with it.
        """
        cols: list[sql.Composable] = [
            sql.SQL("n bigint"),
            sql.SQL("wkb geometry"),
            sql.SQL("valid boolean"),
            sql.SQL("empty boolean"),
        ]
        cols += [
            sql.SQL("{} {}").format(sql.Identifier(c.column), sql.SQL(c.pg_type))
            for c in self.columns
        ]
        cols += [sql.SQL("{} text").format(sql.Identifier(col)) for col in self.lowered.values()]
        cur.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(self.table, sql.SQL(", ").join(cols))
        )
        # Read once and dropped: compressing large geometries on the way in costs more than
        # the table is worth (pglz took a third of the N50 upload's time in the database).
        cur.execute(sql.SQL("ALTER TABLE {} ALTER wkb SET STORAGE EXTERNAL").format(self.table))

    def copy(self, cur: psycopg.Cursor[Any], batches: Iterable[pa.RecordBatch]) -> Iterable[int]:
        """COPY every batch; yields the running feature count for progress reporting."""
        names = [sql.Identifier(n) for n in ("n", "wkb", "valid", "empty")]
        names += [sql.Identifier(c.column) for c in self.columns]
        names += [sql.Identifier(col) for col in self.lowered.values()]
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            self.table, sql.SQL(", ").join(names)
        )
        unreleased = 0
        with cur.copy(statement) as copy, read_ahead(map(self._csv, batches)) as encoded:
            for data, rows, summary in encoded:
                self.geometries.add(summary)
                copy.write(data)
                self.rows += rows
                unreleased += len(data)
                if unreleased > RELEASE_EVERY:
                    release_freed_memory()
                    unreleased = 0
                yield self.rows

    def _csv(self, batch: pa.RecordBatch) -> tuple[memoryview, int, GeometrySummary]:
        """One batch as the CSV rows COPY reads, how many features it holds and what the
        geometry checks saw."""
        wkb = batch.column(GEOM_COLUMN)
        valid, empty, summary = geometry_checks(wkb)
        if summary.too_deep:
            fids = batch.column(FID_COLUMN).to_pylist()
            named = ", ".join(str(fids[i]) for i in summary.too_deep[:10])
            raise InvalidInput(
                f"Features {named} nest GeometryCollections more than {MAX_COLLECTION_DEPTH} "
                "levels deep, which no layer can store. Flatten them (QGIS: Vector > Geometry "
                "Tools > Multipart to Singleparts) and upload again.",
                code="geometry_too_deep",
                fids=[fids[i] for i in summary.too_deep[:10]],
            )
        arrays = [batch.column(FID_COLUMN), hex_wkb(wkb), valid, empty]
        arrays += [_as_csv_column(batch.column(c.source), c.pg_type) for c in self.columns]
        for source in self.lowered:
            text = _as_csv_column(batch.column(source), "text")
            arrays.append(pc.utf8_lower(pc.utf8_trim_whitespace(text)))
        table = pa.Table.from_arrays(arrays, names=[f"x{i}" for i in range(len(arrays))])
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, _CSV)
        return buffer.getbuffer(), batch.num_rows, summary


@dataclass
class GeometrySummary:
    """What the checks saw over the staged geometries, so that a clean upload in the storage
    CRS needs no second pass over the loaded table to count and bound it."""

    unread: int = 0  # GEOS could not read them (curved types): PostGIS checks these
    invalid: int = 0
    empty: int = 0  # missing, or without coordinates
    types: set[int] = field(default_factory=set)  # shapely type ids of the others
    bounds: list[float] | None = None  # xmin, ymin, xmax, ymax of the others
    # The smallest feature's larger bounding-box side: tiles skip looking for features too
    # small to draw at zooms where none can be.
    smallest: float | None = None
    too_deep: list[int] = field(default_factory=list)  # positions in the batch

    def add(self, other: GeometrySummary) -> None:
        """Fold in the summary of the next batch."""
        self.unread += other.unread
        self.invalid += other.invalid
        self.empty += other.empty
        self.types |= other.types
        if other.bounds is not None:
            b, o = self.bounds, other.bounds
            self.bounds = o if b is None else [*map(min, b[:2], o[:2]), *map(max, b[2:], o[2:])]
        if other.smallest is not None:
            mine = self.smallest
            self.smallest = other.smallest if mine is None else min(mine, other.smallest)


def geometry_checks(wkb: pa.Array) -> tuple[pa.Array, pa.Array, GeometrySummary]:
    """Per feature: is the geometry valid, is it empty (no coordinates at all)? And a summary.

    NULL where GEOS cannot read the WKB (curved types, say): PostGIS then decides, as it does
    for everything else. A missing geometry counts as empty.
    """
    values = wkb.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):  # unreadable WKB becomes None, without a warning
        try:
            shapes = shapely.from_wkb(values, on_invalid="ignore")
        except (NotImplementedError, shapely.errors.ShapelyError):
            # Curved types make GEOS refuse the whole array; read one by one instead.
            shapes = np.array([_one_shape(v) for v in values], dtype=object)
    missing = np.asarray(wkb.is_null())
    unread = shapely.is_missing(shapes) & ~missing
    is_valid = shapely.is_valid(shapes)
    empty = (shapely.get_num_coordinates(shapes) == 0) | missing  # also empty collections
    summary = GeometrySummary(unread=int(unread.sum()), empty=int((empty & ~unread).sum()))
    seen = shapes[~empty & ~unread]
    if len(seen):
        summary.invalid = int(len(seen) - is_valid[~empty & ~unread].sum())
        summary.types = {int(t) for t in np.unique(shapely.get_type_id(seen))}
        box = shapely.bounds(seen)
        summary.bounds = [*map(float, box[:, :2].min(axis=0)), *map(float, box[:, 2:].max(axis=0))]
        with np.errstate(invalid="ignore", over="ignore"):
            sizes = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
        sizes = sizes[np.isfinite(sizes)]
        summary.smallest = float(sizes.min()) if len(sizes) else None
    collections = np.flatnonzero(shapely.get_type_id(shapes) == GEOMETRY_COLLECTION)
    summary.too_deep = [int(i) for i in collections if _too_deep(shapes[i])]
    valid = pa.array(is_valid, mask=unread)
    return valid, pa.array(empty, mask=unread), summary


GEOMETRY_COLLECTION = 7
MAX_COLLECTION_DEPTH = 8  # PostGIS refuses deeper nesting outright; nobody needs it


def _too_deep(geometry: Any) -> bool:
    """Collections nested more than MAX_COLLECTION_DEPTH deep (walked level by level)."""
    level, depth = [geometry], 0
    while level:
        nested = [g for g in level if shapely.get_type_id(g) == GEOMETRY_COLLECTION]
        if not nested:
            return False
        depth += 1
        if depth > MAX_COLLECTION_DEPTH:
            return True
        level = [part for g in nested for part in g.geoms]
    return False


def _one_shape(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return shapely.from_wkb(value, on_invalid="ignore")
    except (NotImplementedError, shapely.errors.ShapelyError):
        return None


_DONE = object()


@cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018  (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def release_freed_memory() -> None:
    """Give memory freed by the last batches back to the system (glibc keeps it otherwise).

    Without this the allocators keep what every batch freed and the peak creeps up with the
    file (importing 1 M features peaked 37 MB higher without it). Called every
    ``RELEASE_EVERY`` bytes sent, not every batch: trimming costs a few milliseconds.
    """
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@contextmanager
def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """Produce ``items`` in a thread, at most ``depth`` ahead of the consumer.

    Reading and encoding the next batch (GDAL and Arrow, which release the GIL) overlaps with
    sending this one to PostgreSQL. Errors reach the consumer; leaving early stops the thread
    before the source is closed, so the file is never read after its reader is gone.
    """
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put(item)
            queue.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(exc)

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()

    def consume() -> Iterator[T]:
        while (item := queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    try:
        yield consume()
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with suppress(Empty):
                queue.get(timeout=0.05)
        worker.join()
