"""Upload a vector file as a new layer version: stage, validate, repair, publish — all or nothing.

The whole import runs in one database transaction. Features are streamed from the file in
Arrow batches, attribute codes are checked against the code lists, and rows are COPYed into
a temporary staging table. PostGIS then reprojects, repairs and type-filters the geometries,
checks that the data lies in Norway, and the result is loaded into a fresh table that is
indexed and attached as the version's partition. A failure anywhere rolls everything back.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql
from sqlalchemy import Engine

from geoservice.errors import Conflict, InvalidInput
from layers import codelists, crs, reader
from layers.kinds import Attribute, LayerKind, get_kind, resolve_field_map

ProgressFn = Callable[[int, int], None]
MAX_BAD_IDS = 10
EXTENT_SAMPLE = 2000
EXTENT_TOLERANCE = 0.05  # share of sampled features allowed outside Norway
FAMILY_NAMES = {1: "points", 2: "lines", 3: "polygons"}


@dataclass
class ImportOptions:
    """What the uploader asked for besides the file."""

    kind: str
    name: str
    crs: str | None = None
    layer: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    licence: str | None = None
    uploader: str | None = None
    keep_unknown: bool = False
    check_extent: bool = True
    source_filename: str | None = None


@dataclass
class ImportResult:
    """What an upload produced; returned by the API and printed by the CLI."""

    layer_id: int
    name: str
    kind: str
    version: int
    version_id: int
    feature_count: int
    source_feature_count: int
    bbox: list[float]
    storage_crs: str
    source_crs: str
    source_sha256: str
    field_map: dict[str, str]
    repairs: dict[str, int]
    unknown_codes: dict[str, Any]
    geometry_type: str
    active: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class _Unknown:
    """Values of one attribute that are not in its code list (or not of its type)."""

    values: dict[str, int] = field(default_factory=dict)
    feature_ids: list[int] = field(default_factory=list)

    def add(self, value: object, fid: int) -> None:
        key = str(value)
        self.values[key] = self.values.get(key, 0) + 1
        if len(self.feature_ids) < MAX_BAD_IDS:
            self.feature_ids.append(fid)


def sha256_of(path: Path) -> str:
    """Checksum of the uploaded file, recorded as provenance."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cast(attr: Attribute, value: object) -> tuple[object, bool]:
    """(typed value, ok). ``None`` passes as missing; a value that will not fit is not ok."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, True
    if attr.codelist:
        cl = codelists.load(attr.codelist)
        code = cl.normalise(value)
        if code is None or code not in cl.rows:
            return None, False
        return code, True
    try:
        if attr.type == "int":
            number = float(str(value).strip()) if not isinstance(value, int | float) else value
            if isinstance(number, float) and not number.is_integer():
                return None, False
            return int(number), True
        if attr.type == "float":
            return float(str(value).strip().replace(",", ".")), True
    except ValueError:
        return None, False
    return str(value).strip(), True


def _json_default(value: object) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)


class _Stager:
    """Turns Arrow batches into staging rows, checking codes on the way."""

    def __init__(self, kind: LayerKind, field_map: dict[str, str], keep_unknown: bool) -> None:
        self.kind = kind
        self.field_map = field_map
        self.keep_unknown = keep_unknown
        self.unknown: dict[str, _Unknown] = {}
        self.mapped_sources = set(field_map.values())

    def rows(self, batch: pa.RecordBatch) -> list[tuple[object, ...]]:
        columns = {name: batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
        fids: list[int] = columns.pop(reader.FID_COLUMN)
        geoms: list[bytes | None] = columns.pop(reader.GEOM_COLUMN)
        attr_values = {a: columns[src] for a, src in self.field_map.items()}
        prop_names = [n for n in columns if n not in self.mapped_sources]
        out: list[tuple[object, ...]] = []
        for i, fid in enumerate(fids):
            attrs: dict[str, object] = {}
            props = {n: columns[n][i] for n in prop_names if columns[n][i] is not None}
            for attr_name, values in attr_values.items():
                raw = values[i]
                typed, ok = _cast(self.kind.attribute(attr_name), raw)
                if not ok:
                    self.unknown.setdefault(attr_name, _Unknown()).add(raw, fid)
                    props[self.field_map[attr_name]] = raw  # keep the original value
                elif typed is not None:
                    attrs[attr_name] = typed
            if self.kind.name == "land_cover" and "arealtype" not in attrs:
                n50 = attrs.get("n50_klasse")
                if isinstance(n50, int):
                    attrs["arealtype"] = codelists.n50_to_ar5(n50)
                    attrs["arealtype_source"] = "n50_crosswalk"
            out.append(
                (
                    fid,
                    str(fid),
                    json.dumps(attrs, ensure_ascii=False),
                    json.dumps(props, ensure_ascii=False, default=_json_default),
                    geoms[i],
                )
            )
        return out

    def raise_if_unknown(self) -> None:
        if not self.unknown or self.keep_unknown:
            return
        parts = []
        for attr_name, unk in self.unknown.items():
            values = sorted(unk.values, key=lambda v: -unk.values[v])
            shown = ", ".join(f"{v!r} ({unk.values[v]}×)" for v in values[:10])
            attr = self.kind.attribute(attr_name)
            what = f"code list {attr.codelist}" if attr.codelist else f"type {attr.type}"
            parts.append(
                f"field {self.field_map[attr_name]!r} ({attr_name}, {what}) has values that are "
                f"not valid: {shown}; e.g. in features {unk.feature_ids}"
            )
        raise InvalidInput(
            "Unknown codes: "
            + "; ".join(parts)
            + ". Fix them, map another field, or upload with keep_unknown=true to store them "
            "as unknown.",
            code="unknown_codes",
            unknown_codes=self.report(),
        )

    def property_names(self, source_fields: list[str]) -> list[str]:
        """Names a feature's properties can have: typed attributes, then the file's others."""
        names = list(self.field_map)
        if self.kind.name == "land_cover" and "arealtype" not in names:
            names += ["arealtype", "arealtype_source"]
        return names + [f for f in source_fields if f not in self.mapped_sources]

    def report(self) -> dict[str, Any]:
        return {
            attr: {"field": self.field_map[attr], "values": u.values, "feature_ids": u.feature_ids}
            for attr, u in self.unknown.items()
        }


def import_file(
    engine: Engine,
    path: Path,
    options: ImportOptions,
    *,
    storage_srid: int,
    max_unzipped_bytes: int = 5_000_000_000,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Validate and publish ``path`` as the next version of layer ``options.name``."""
    kind = get_kind(options.kind)
    with tempfile.TemporaryDirectory(prefix="geoservice-upload-") as workdir:
        dataset = reader.dataset_path(path, Path(workdir), max_unzipped_bytes=max_unzipped_bytes)
        if dataset.suffix.lower() == ".shp" and not options.crs and not reader.has_prj(dataset):
            raise InvalidInput(
                f"{path.name}: the Shapefile has no .prj file, so its coordinate reference "
                "system is unknown. Add the .prj to the zip, or say which CRS it uses "
                "(crs=EPSG:25833).",
                code="missing_crs",
            )
        info = reader.inspect(dataset, options.layer)
        source = crs.resolve_source_crs(info.crs, options.crs)
        field_map = resolve_field_map(kind, info.fields, options.field_map)
        checksum = sha256_of(path)
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert isinstance(conn, psycopg.Connection)
            result = _publish(
                conn,
                info=info,
                kind=kind,
                options=options,
                source=source,
                field_map=field_map,
                checksum=checksum,
                filename=options.source_filename or path.name,
                storage_srid=storage_srid,
                progress=progress,
            )
            conn.commit()
            return result
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()


def _publish(
    conn: psycopg.Connection[Any],
    *,
    info: reader.SourceInfo,
    kind: LayerKind,
    options: ImportOptions,
    source: crs.SourceCrs,
    field_map: dict[str, str],
    checksum: str,
    filename: str,
    storage_srid: int,
    progress: ProgressFn | None,
) -> ImportResult:
    cur = conn.cursor()
    if (
        cur.execute("SELECT 1 FROM spatial_ref_sys WHERE srid = %s", (source.srid,)).fetchone()
        is None
    ):
        raise InvalidInput(
            f"PostGIS does not know {source.label}; reproject the data to EPSG:{storage_srid}.",
            code="bad_crs",
        )
    layer_id, version, version_id = _new_version(
        cur, kind, options, source, field_map, checksum, filename, info, storage_srid
    )
    cur.execute(
        "CREATE TEMP TABLE stage (n bigint, src_id text, attrs jsonb, props jsonb, wkb bytea)"
        " ON COMMIT DROP"
    )
    stager = _Stager(kind, field_map, options.keep_unknown)
    done = 0
    with (
        cur.copy("COPY stage (n, src_id, attrs, props, wkb) FROM STDIN") as copy,
        reader.record_batches(info) as batches,
    ):
        for batch in batches:
            for staged in stager.rows(batch):
                copy.write_row(staged)
            done += batch.num_rows
            if progress:
                progress(done, info.feature_count)
    stager.raise_if_unknown()
    if done == 0:
        raise InvalidInput(f"{filename} contains no features.", code="empty_file")

    family = _prepare(cur, kind, source.srid, storage_srid)
    if options.check_extent:
        _check_extent(cur, source, storage_srid)
    repairs = _repairs(cur)
    if repairs["kept"] == 0:
        raise InvalidInput(
            f"None of the {done} features of {filename} has usable "
            f"{FAMILY_NAMES.get(family, 'geometry')} after repair "
            f"(empty: {repairs['dropped_empty']}, "
            f"of another type: {repairs['dropped_wrong_type']}).",
            code="no_geometry",
        )
    table = sql.Identifier("geoservice", f"feature_v{version_id}")
    cur.execute(
        sql.SQL("CREATE TABLE {} (LIKE geoservice.feature INCLUDING DEFAULTS)").format(table)
    )
    cur.execute(
        sql.SQL(
            "INSERT INTO {} (version_id, fid, src_id, attrs, props, geom, repaired) "
            "SELECT %s, n, src_id, attrs, props, geom, NOT was_valid FROM prepared "
            "WHERE geom IS NOT NULL ORDER BY n"
        ).format(table),
        (version_id,),
    )
    # Indexes are built once, after loading, when the partition is attached.
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (version_id = {})").format(
            table, sql.Identifier(f"feature_v{version_id}_version"), sql.Literal(version_id)
        )
    )
    cur.execute(
        sql.SQL("ALTER TABLE geoservice.feature ATTACH PARTITION {} FOR VALUES IN ({})").format(
            table, sql.Literal(version_id)
        )
    )
    row = cur.execute(
        sql.SQL(
            "SELECT c, x0, y0, x1, y1, ST_MakeEnvelope(x0, y0, x1, y1, %s), "
            "(SELECT ST_GeometryType(geom) FROM {} LIMIT 1) "
            "FROM (SELECT count(*) AS c, min(ST_XMin(geom)) AS x0, min(ST_YMin(geom)) AS y0, "
            "max(ST_XMax(geom)) AS x1, max(ST_YMax(geom)) AS y1 FROM {}) x"
        ).format(table, table),
        (storage_srid,),
    ).fetchone()
    assert row is not None
    count, xmin, ymin, xmax, ymax, bbox_geom, geometry_type = row
    cur.execute(
        """
        UPDATE geoservice.layer_version
           SET feature_count = %s, source_feature_count = %s, bbox = %s, geometry_type = %s,
               repairs = %s, unknown_codes = %s, property_names = %s
         WHERE id = %s
        """,
        (
            count,
            done,
            bbox_geom,
            str(geometry_type).removeprefix("ST_"),
            json.dumps(repairs),
            json.dumps(stager.report(), ensure_ascii=False),
            stager.property_names(info.fields),
            version_id,
        ),
    )
    cur.execute(
        "UPDATE geoservice.layer SET active_version_id = %s WHERE id = %s", (version_id, layer_id)
    )
    cur.execute(sql.SQL("ANALYZE {}").format(table))
    return ImportResult(
        layer_id=layer_id,
        name=options.name,
        kind=kind.name,
        version=version,
        version_id=version_id,
        feature_count=int(count),
        source_feature_count=done,
        bbox=[float(xmin), float(ymin), float(xmax), float(ymax)],
        storage_crs=f"EPSG:{storage_srid}",
        source_crs=source.label,
        source_sha256=checksum,
        field_map=field_map,
        repairs=repairs,
        unknown_codes=stager.report(),
        geometry_type=str(geometry_type).removeprefix("ST_"),
    )


def _new_version(
    cur: psycopg.Cursor[Any],
    kind: LayerKind,
    options: ImportOptions,
    source: crs.SourceCrs,
    field_map: dict[str, str],
    checksum: str,
    filename: str,
    info: reader.SourceInfo,
    storage_srid: int,
) -> tuple[int, int, int]:
    """Create (or lock) the layer and reserve its next version number."""
    name = options.name.strip()
    if not name:
        raise InvalidInput("A layer needs a name.", code="missing_name")
    cur.execute(
        "INSERT INTO geoservice.layer (name, kind) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
        (name, kind.name),
    )
    row = cur.execute(
        "SELECT id, kind FROM geoservice.layer WHERE name = %s FOR UPDATE", (name,)
    ).fetchone()
    assert row is not None
    layer_id, existing_kind = row
    if existing_kind != kind.name:
        raise Conflict(
            f"Layer {name!r} holds {existing_kind} data; a {kind.name} file cannot become a "
            "new version of it. Choose another name or the matching kind.",
            code="kind_mismatch",
        )
    version_row = cur.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM geoservice.layer_version WHERE layer_id = %s",
        (layer_id,),
    ).fetchone()
    assert version_row is not None
    version = int(version_row[0])
    id_row = cur.execute(
        """
        INSERT INTO geoservice.layer_version
            (layer_id, version, uploader, source_filename, source_format, source_layer,
             source_sha256, source_crs, storage_srid, licence, field_map, extent_checked)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id
        """,
        (
            layer_id,
            version,
            options.uploader,
            filename,
            info.format,
            info.layer,
            checksum,
            source.label,
            storage_srid,
            options.licence,
            json.dumps(field_map),
            options.check_extent,
        ),
    ).fetchone()
    assert id_row is not None
    return int(layer_id), version, int(id_row[0])


def _prepare(cur: psycopg.Cursor[Any], kind: LayerKind, src_srid: int, srid: int) -> int:
    """Reproject and repair in PostGIS; return the geometry family kept (1, 2 or 3)."""
    try:
        cur.execute(
            """
            CREATE TEMP TABLE prepared ON COMMIT DROP AS
            SELECT s.n, s.src_id, s.attrs, s.props,
                   g.g0 IS NULL OR ST_IsEmpty(g.g0) AS empty,
                   v.ok AS was_valid,
                   CASE WHEN v.ok AND ST_IsValid(t.g1) THEN t.g1 ELSE ST_MakeValid(t.g1) END
                       AS g2,
                   NULL::geometry AS geom
              FROM stage s
              CROSS JOIN LATERAL (SELECT ST_GeomFromWKB(s.wkb, %(src)s) AS g0) g
              CROSS JOIN LATERAL (
                    SELECT CASE WHEN g.g0 IS NULL OR ST_IsEmpty(g.g0) THEN NULL
                                ELSE ST_Transform(ST_Force2D(g.g0), %(srid)s) END AS g1) t
              -- valid as drawn in the source CRS and still valid after reprojection
              CROSS JOIN LATERAL (
                    SELECT g.g0 IS NULL OR ST_IsEmpty(g.g0)
                           OR (ST_IsValid(g.g0) AND ST_IsValid(t.g1)) AS ok) v
            """,
            {"src": src_srid, "srid": srid},
        )
    except psycopg.errors.InternalError as exc:  # PROJ could not transform
        raise InvalidInput(
            f"The coordinates cannot be transformed from EPSG:{src_srid} to EPSG:{srid} "
            f"({exc.diag.message_primary}). They are probably not in EPSG:{src_srid}; "
            "check the CRS of the file.",
            code="bad_coordinates",
        ) from exc
    except psycopg.errors.DataException as exc:
        raise InvalidInput(
            f"Some geometries could not be decoded ({exc.diag.message_primary}).",
            code="bad_geometry",
        ) from exc
    if kind.geometry == "polygon":
        family = 3
    elif kind.geometry == "point":
        family = 1
    else:
        dims = cur.execute(
            "SELECT ST_Dimension(g2) AS d, count(*) FROM prepared WHERE g2 IS NOT NULL "
            "AND NOT ST_IsEmpty(g2) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        found = {int(d): int(n) for d, n in dims}
        allowed = {0, 2} if kind.geometry == "polygon_or_point" else {0, 1, 2}
        if len(found) > 1 or not set(found) <= allowed:
            listing = ", ".join(f"{n} {FAMILY_NAMES[d + 1]}" for d, n in found.items())
            want = "only points or only polygons" if kind.geometry != "any" else "one type"
            raise InvalidInput(
                f"The file mixes geometry types ({listing}); a {kind.name} layer takes {want}. "
                "Split the file by geometry type and upload each part as its own layer.",
                code="mixed_geometry_types",
            )
        family = (next(iter(found)) + 1) if found else 3
    cur.execute(
        """
        UPDATE prepared SET geom = ST_Multi(ST_CollectionExtract(g2, %s))
         WHERE g2 IS NOT NULL AND NOT ST_IsEmpty(ST_CollectionExtract(g2, %s))
        """,
        (family, family),
    )
    return family


def _repairs(cur: psycopg.Cursor[Any]) -> dict[str, int]:
    """Counts for the upload result: what was repaired, trimmed or dropped, and why."""
    row = cur.execute(
        """
        SELECT count(*) FILTER (WHERE geom IS NOT NULL),
               count(*) FILTER (WHERE NOT was_valid AND geom IS NOT NULL),
               count(*) FILTER (WHERE empty),
               count(*) FILTER (WHERE NOT empty AND geom IS NULL),
               count(*) FILTER (WHERE geom IS NOT NULL
                                  AND ST_NumGeometries(geom) <> ST_NumGeometries(g2)
                                  AND ST_GeometryType(g2) = 'ST_GeometryCollection')
          FROM prepared
        """
    ).fetchone()
    assert row is not None
    kept, repaired, empty, wrong, trimmed = (int(v) for v in row)
    return {
        "kept": kept,
        "repaired": repaired,
        "dropped_empty": empty,
        "dropped_wrong_type": wrong,
        "trimmed": trimmed,
    }


def _check_extent(cur: psycopg.Cursor[Any], source: crs.SourceCrs, srid: int) -> None:
    """Refuse data that does not lie in Norway, and say what probably went wrong."""
    extent = crs.norway_extent_wkt()
    row = cur.execute(
        """
        WITH ext AS (SELECT ST_Transform(ST_GeomFromText(%s, 25833), %s) AS g),
             sample AS (SELECT geom FROM prepared WHERE geom IS NOT NULL ORDER BY n LIMIT %s)
        SELECT count(*), count(*) FILTER (WHERE NOT ST_Intersects(ext.g, ST_PointOnSurface(geom)))
          FROM sample, ext
        """,
        (extent, srid, EXTENT_SAMPLE),
    ).fetchone()
    assert row is not None
    total, outside = int(row[0]), int(row[1])
    if total == 0 or outside <= EXTENT_TOLERANCE * total:
        return
    bbox = cur.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(ST_GeomFromWKB(wkb)) AS e FROM stage) x"
    ).fetchone()
    assert bbox is not None
    box = ", ".join(f"{v:.6g}" for v in bbox)
    cause = _likely_cause(cur, source, extent)
    raise InvalidInput(
        f"{outside} of {total} sampled features do not lie in Norway when the coordinates are "
        f"read as {source.label}. The data's bounding box is ({box}) in the file's units. "
        f"{cause} To import data outside Norway anyway, turn the extent check off "
        "(check_extent=false).",
        code="outside_norway",
        bbox=[float(v) for v in bbox],
        source_crs=source.label,
    )


def _likely_cause(cur: psycopg.Cursor[Any], source: crs.SourceCrs, extent: str) -> str:
    """Try the usual mix-ups (other UTM zone, degrees, swapped axes) on a sample."""
    candidates: list[tuple[str, int, bool]] = [(source.label, source.srid, True)]
    candidates += [(f"EPSG:{s}", s, False) for s in crs.LIKELY_SRIDS if s != source.srid]
    candidates += [(f"EPSG:{s}", s, True) for s in crs.LIKELY_SRIDS if s != source.srid]
    for label, srid, swap in candidates:
        try:
            with cur.connection.transaction():
                row = cur.execute(
                    """
                    WITH ext AS (SELECT ST_GeomFromText(%(ext)s, 25833) AS g),
                         pts AS (SELECT ST_PointOnSurface(ST_GeomFromWKB(wkb)) AS p
                                   FROM stage WHERE wkb IS NOT NULL ORDER BY n LIMIT 200)
                    SELECT count(*) FILTER (WHERE ST_Intersects(ext.g, ST_Transform(
                               ST_SetSRID(CASE WHEN %(swap)s THEN ST_FlipCoordinates(p)
                                               ELSE p END, %(srid)s), 25833))),
                           count(*)
                      FROM pts, ext
                    """,
                    {"ext": extent, "srid": srid, "swap": swap},
                ).fetchone()
        except psycopg.Error:
            continue
        if row and row[1] and row[0] >= 0.95 * row[1]:
            if swap and srid == source.srid:
                return (
                    "With x and y swapped it lies in Norway: the axes are probably swapped "
                    "(northing written before easting, or latitude before longitude)."
                )
            if srid in (4326, 4258) and not swap:
                return (
                    f"Read as longitude/latitude degrees ({label}) it lies in Norway: the "
                    f"coordinates are probably degrees, not {source.label} metres. "
                    f"Upload again with crs={label}."
                )
            if swap:
                return f"Read as {label} with the axes swapped it lies in Norway."
            return (
                f"Read as {label} it lies in Norway: the file is probably in {label} but "
                f"labelled {source.label}. Upload again with crs={label}."
            )
    return "No common Norwegian CRS places it in Norway either; check the source of the file."
