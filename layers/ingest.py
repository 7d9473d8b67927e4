"""Upload a vector file as a new layer version: stage, validate, repair, publish — all or nothing.

The whole import runs in one database transaction. Features are streamed from the file in
Arrow batches and COPYed (as CSV written by Arrow) into a staging table created inside the
transaction; the thread that encodes a batch also checks its geometries with GEOS (valid,
empty, type, bounds). SQL then checks attribute codes against the code lists, and PostGIS
reprojects, repairs and type-filters the geometries into a fresh table, checks that the data
lies in Norway, and attaches the table as the version's partition (indexes are built then).
A failure anywhere rolls everything back, staging table included.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from core.database import psycopg_transaction
from core.errors import InvalidInput
from layers import codelists, crs, reader
from layers.attributes import (
    AttrSql,
    attribute_columns,
    attribute_sqls,
    attrs_expression,
    props_expression,
    raise_for_unknown,
    stored_attributes,
    unknown_codes,
)
from layers.catalog import check_layer_name, lock_layer
from layers.kinds import KINDS, LayerKind, get_kind, resolve_field_map
from layers.rasters import RASTER_SUFFIXES, import_raster
from layers.result import ImportResult
from layers.signatures import check_signature
from layers.staging import Stager

ProgressFn = Callable[[int, int], None]
EXTENT_SAMPLE = 2000
EXTENT_TOLERANCE = 0.05  # share of sampled features allowed outside Norway
FAMILY_NAMES = {1: "points", 2: "lines", 3: "polygons"}
MULTI = {1: "ST_MultiPoint", 2: "ST_MultiLineString", 3: "ST_MultiPolygon"}
# shapely type ids that need no repair in each family: single and multi parts
FAMILY_TYPES = {1: {0, 4}, 2: {1, 2, 5}, 3: {3, 6}}


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
    kommune: str | None = None  # the data must lie in this kommune (else its features' own)
    source_filename: str | None = None
    source_sha256: str | None = None  # when the caller hashed the file while receiving it
    pools: tuple[str, ...] = ()  # carbon_density rasters: the carbon pools the values cover


# Kinds whose versions record whether their polygons overlap each other.
OVERLAP_CHECKED_KINDS = frozenset({"degraded_areas"})


def sha256_of(path: Path) -> str:
    """Checksum of the uploaded file, recorded as provenance."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_file(
    engine: Engine,
    path: Path,
    options: ImportOptions,
    *,
    storage_srid: int,
    max_unzipped_bytes: int = 5_000_000_000,
    max_features: int | None = None,
    progress: ProgressFn | None = None,
    data_dir: Path | None = None,
) -> ImportResult:
    """Validate and publish ``path`` as the next version of layer ``options.name``."""
    kind = get_kind(options.kind)
    check_layer_name(options.name)
    filename = options.source_filename or path.name
    is_tif = path.suffix.lower() in RASTER_SUFFIXES
    if is_tif != kind.is_raster:
        raster_kinds = ", ".join(k.name for k in KINDS.values() if k.is_raster)
        raise InvalidInput(
            f"{filename} is a raster; upload it as kind {raster_kinds}."
            if is_tif
            else f"A {kind.name} layer is a raster (GeoTIFF); {filename} is not one.",
            code="kind_format_mismatch",
        )
    if kind.is_raster:
        if path.stat().st_size == 0:
            raise InvalidInput(f"{filename} is empty (0 bytes).", code="empty_file")
        check_signature(path, path.suffix.lower(), display_name=filename)
        if data_dir is None:
            raise ValueError("raster uploads need the data directory")
        return import_raster(
            engine,
            path,
            kind=kind,
            name=options.name.strip(),
            requested_crs=options.crs,
            licence=options.licence,
            uploader=options.uploader,
            check_extent=options.check_extent,
            checksum=options.source_sha256 or sha256_of(path),
            filename=filename,
            storage_srid=storage_srid,
            data_dir=data_dir,
            pools=options.pools,
        )
    with tempfile.TemporaryDirectory(prefix="geoservice-upload-") as workdir:
        prepared = reader.dataset_path(
            path,
            Path(workdir),
            max_unzipped_bytes=max_unzipped_bytes,
            display_name=filename,
            layer=options.layer,
            geometry=kind.geometry if kind.geometry == "polygon" else None,
        )
        dataset = prepared.path
        if dataset.suffix.lower() == ".shp" and not options.crs and not reader.has_prj(dataset):
            raise InvalidInput(
                f"{filename}: the Shapefile has no .prj file, so its coordinate reference "
                "system is unknown. Add the .prj to the zip, or say which CRS it uses "
                "(crs=EPSG:25833).",
                code="missing_crs",
            )
        info = reader.inspect(
            dataset,
            prepared.layer,
            display_name=filename,
            prefer=kind.preferred_layers,
            areas=kind.geometry == "polygon",
        )
        _check_geometry_family(kind, info)
        reader.check_feature_count(info.feature_count, max_features, filename)
        source = crs.resolve_source_crs(info.crs, options.crs)
        field_map = resolve_field_map(kind, info.fields, options.field_map)
        checksum = options.source_sha256 or sha256_of(path)
        with psycopg_transaction(engine) as conn:
            result = _publish(
                conn,
                info=info,
                kind=kind,
                options=options,
                source=source,
                field_map=field_map,
                checksum=checksum,
                filename=filename,
                storage_srid=storage_srid,
                progress=progress,
                max_features=max_features,
            )
        result.source_notes = prepared.notes
        return result


LINE_OR_POINT = {"LineString", "MultiLineString", "Point", "MultiPoint"}


def _check_geometry_family(kind: LayerKind, info: reader.SourceInfo) -> None:
    """An area kind refuses a file of lines or points at once, before its fields are read
    (an AR5 file of ArealressursGrense lines has no arealtype to complain about)."""
    found = info.geometry_type.removeprefix("3D ").replace(" Z", "")
    if kind.geometry == "polygon" and found in LINE_OR_POINT:
        what = "lines" if "Line" in found else "points"
        raise InvalidInput(
            f"{info.shown} holds {what} ({found}), but a {kind.name} layer is made of areas "
            "(polygons). Export the areas themselves (for AR5: ArealressursFlate, not "
            "ArealressursGrense; for a plan: the arealformål areas, not its boundary lines).",
            code="wrong_geometry_type",
        )


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
    max_features: int | None,
) -> ImportResult:
    cur = conn.cursor()
    known = cur.execute("SELECT 1 FROM spatial_ref_sys WHERE srid = %s", (source.srid,))
    if known.fetchone() is None:
        raise InvalidInput(
            f"PostGIS does not know {source.label}; reproject the data to EPSG:{storage_srid}.",
            code="bad_crs",
        )
    layer_id, version, version_id = _new_version(
        cur, kind, options, source, field_map, checksum, filename, info, storage_srid
    )
    lowered = [
        src
        for attr_name, src in field_map.items()
        if (cl := kind.attribute(attr_name).codelist) and not codelists.load(cl).numeric
    ]
    # Planner costs of PostGIS functions make the JIT kick in; compiling costs more than it saves.
    cur.execute("SET LOCAL jit = off")
    # A big upload legitimately takes minutes; the service's per-query limit is for reads.
    cur.execute("SET LOCAL statement_timeout = 0")
    _fast_compression(cur)
    stage = sql.Identifier("geoservice", f"stage_v{version_id}")
    stager = Stager(stage, info.arrow_fields, lowered)
    stager.create(cur)
    try:
        with reader.record_batches(info) as batches:
            for done in stager.copy(cur, batches):
                reader.check_feature_count(done, max_features, filename)
                if progress:
                    progress(done, info.feature_count)
    except psycopg.errors.DataError as exc:
        raise InvalidInput(
            f"{filename}: some values or geometries could not be read "
            f"({exc.diag.message_primary}).",
            code="bad_geometry",
        ) from exc
    if stager.rows == 0:
        raise InvalidInput(f"{filename} contains no features.", code="empty_file")
    linearised = _linearise_curves(cur, stage) if stager.geometries.unread else 0
    attrs = attribute_sqls(kind, field_map, stager)
    report = unknown_codes(cur, stage, attrs)
    if not options.keep_unknown:
        raise_for_unknown(kind, report)

    table = sql.Identifier("geoservice", f"feature_v{version_id}")
    family = _family(cur, stage, kind)
    repairs, bbox, smallest = _load(
        cur, table, version_id, kind, attrs, report, stager, family, source.srid, storage_srid
    )
    _finish_table(cur, table, version_id, repairs)
    repairs["linearised"] = linearised
    if repairs["kept"] == 0:
        raise InvalidInput(
            f"None of the {stager.rows} features of {filename} has usable "
            f"{FAMILY_NAMES.get(family, 'geometry')} after repair "
            f"(empty: {repairs['dropped_empty']}, "
            f"of another type: {repairs['dropped_wrong_type']}).",
            code="no_geometry",
        )
    if options.check_extent:
        _check_extent(cur, table, stage, source, storage_srid)
        _check_kommune(cur, table, stage, source, storage_srid, options.kommune)
    cur.execute(sql.SQL("DROP TABLE {}").format(stage))
    # Indexes are built once, after loading, when the partition is attached.
    cur.execute(
        sql.SQL("ALTER TABLE geoservice.feature ATTACH PARTITION {} FOR VALUES IN ({})").format(
            table, sql.Literal(version_id)
        )
    )
    stored = stored_attributes(kind.name, {a.attr.name for a in attrs})
    _index_filtered_attributes(cur, table, kind, stored, repairs["kept"])
    geometry_type = MULTI[family].removeprefix("ST_")
    property_names = [a.attr.name for a in attrs]
    if kind.name == "land_cover" and "arealtype" not in property_names:
        property_names += ["arealtype", "arealtype_source"]
    property_names += [c.source for c in stager.columns if c.source not in field_map.values()]
    cur.execute(
        """
        UPDATE geoservice.layer_version
           SET feature_count = %s, source_feature_count = %s,
               bbox = ST_MakeEnvelope(%s, %s, %s, %s, %s), geometry_type = %s,
               repairs = %s, unknown_codes = %s, property_names = %s,
               smallest_feature_m = %s
         WHERE id = %s
        """,
        (
            repairs["kept"],
            stager.rows,
            *bbox,
            storage_srid,
            geometry_type,
            json.dumps(repairs),
            json.dumps(report, ensure_ascii=False),
            property_names,
            smallest,
            version_id,
        ),
    )
    cur.execute(
        "UPDATE geoservice.layer SET active_version_id = %s WHERE id = %s", (version_id, layer_id)
    )
    # Statistics for what queries filter and join on; the planner uses none of a jsonb
    # column's (no query filters with @>), and they were half of ANALYZE's time.
    cur.execute(sql.SQL("ANALYZE {} (version_id, fid, geom, repaired)").format(table))
    if kind.name in OVERLAP_CHECKED_KINDS:
        # Sums of areas equal the area of the union only without overlaps; restoration
        # progress takes its fast path when the baseline is known to be overlap-free.
        cur.execute(
            sql.SQL(
                "UPDATE geoservice.layer_version SET self_overlaps = EXISTS ("
                "SELECT 1 FROM {t} a JOIN {t} b ON a.geom && b.geom AND a.fid < b.fid "
                "AND ST_Relate(a.geom, b.geom, '2********')) WHERE id = %s"
            ).format(t=table),
            (version_id,),
        )
    return ImportResult(
        layer_id=layer_id,
        name=options.name,
        kind=kind.name,
        version=version,
        version_id=version_id,
        feature_count=repairs["kept"],
        source_feature_count=stager.rows,
        bbox=bbox,
        storage_crs=f"EPSG:{storage_srid}",
        source_crs=source.label,
        source_sha256=checksum,
        field_map=field_map,
        repairs=repairs,
        unknown_codes=report,
        geometry_type=geometry_type,
    )


# Layers this big get a btree on the attributes filters ask for most (OGC API ``filter`` and
# ``?arealtype=``): built once at import, instead of a full scan for every filtered request.
FILTER_INDEX_MIN_FEATURES = 100_000


def _index_filtered_attributes(
    cur: psycopg.Cursor[Any],
    table: sql.Composable,
    kind: LayerKind,
    mapped: frozenset[str],
    rows: int,
) -> None:
    """A btree on each of the kind's main coded attributes, on the expression the OGC API's
    filters use (:func:`layers.cql.property_expression`), so PostgreSQL can match it."""
    if rows < FILTER_INDEX_MIN_FEATURES:
        return
    for name in kind.filter_indexed:
        if name not in mapped:
            continue
        cur.execute(
            sql.SQL(
                "CREATE INDEX ON {t} "
                "((CAST(coalesce(attrs ->> {n}, props ->> {n}) AS integer)), version_id)"
            ).format(t=table, n=sql.Literal(name))
        )


def _fast_compression(cur: psycopg.Cursor[Any]) -> None:
    """Compress the version's large geometries with lz4 where PostgreSQL was built with it.

    pglz, the default, took 43 ms of a 50 ms load of N50's 1 286 polygons; lz4 takes 9 ms,
    and decompresses faster for every later read too.
    """
    cur.execute(
        "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings "
        "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
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
    layer_id, version = lock_layer(cur, kind, options.name)
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


def _family(cur: psycopg.Cursor[Any], stage: sql.Composable, kind: LayerKind) -> int:
    """The geometry family to keep (1 points, 2 lines, 3 polygons); mixed files are refused."""
    if kind.geometry == "polygon":
        return 3
    if kind.geometry == "point":
        return 1
    dims = cur.execute(
        sql.SQL(
            "SELECT ST_Dimension(wkb), count(*) FROM {} WHERE wkb IS NOT NULL "
            "AND NOT ST_IsEmpty(wkb) GROUP BY 1 ORDER BY 1"
        ).format(stage)
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
    return (next(iter(found)) + 1) if found else 3


CURVED_TYPES = ("CIRCULARSTRING", "COMPOUNDCURVE", "CURVEPOLYGON", "MULTICURVE", "MULTISURFACE")


def _linearise_curves(cur: psycopg.Cursor[Any], stage: sql.Composable) -> int:
    """Turn arcs (GML and GeoPackage may hold them) into straight segments, 32 per quarter
    circle, so that a curved plan area is kept as the polygon it is; returns how many."""
    done = cur.execute(
        sql.SQL(
            "UPDATE {} SET wkb = ST_CurveToLine(wkb) WHERE valid IS NULL AND wkb IS NOT NULL "
            "AND (ST_HasArc(wkb) OR GeometryType(wkb) = ANY(%s))"
        ).format(stage),
        (list(CURVED_TYPES),),
    )
    return done.rowcount


def _refuse_non_finite(cur: psycopg.Cursor[Any], table: sql.Composable) -> None:
    """Refuse coordinates that are NaN or infinite: no repair can say where such a point is.

    Only invalid features are looked at (GEOS calls any non-finite coordinate invalid), so
    the point-by-point check costs nothing on clean data.
    """
    finite = "BETWEEN -1e300 AND 1e300"  # false for NaN and for ±Infinity
    rows = cur.execute(
        sql.SQL(
            "SELECT fid FROM {} t WHERE repaired AND geom IS NOT NULL AND EXISTS ("
            "SELECT 1 FROM ST_DumpPoints(t.geom) d WHERE NOT (ST_X(d.geom) " + finite + " "
            "AND ST_Y(d.geom) " + finite + ")) ORDER BY fid LIMIT 11"
        ).format(table)
    ).fetchall()
    if rows:
        ids = [int(r[0]) for r in rows]
        shown = ", ".join(map(str, ids[:10])) + (" and more" if len(ids) > 10 else "")
        raise InvalidInput(
            f"Features {shown} have coordinates that are not numbers (NaN) or are infinite; "
            "the file is probably damaged where they were written. Fix or remove them.",
            code="bad_coordinates",
            feature_ids=ids[:10],
        )


def _load(
    cur: psycopg.Cursor[Any],
    table: sql.Composable,
    version_id: int,
    kind: LayerKind,
    attrs: list[AttrSql],
    report: dict[str, Any],
    stager: Stager,
    family: int,
    src_srid: int,
    srid: int,
) -> tuple[dict[str, int], list[float], float | None]:
    """Reproject, repair and type-filter in PostGIS while loading the version's table.

    Returns the counts the upload reports (kept, repaired, dropped and why, trimmed) and the
    exact bounding box of what was kept.
    """
    # Step 1, every feature: reproject and check validity. CREATE TABLE AS runs this in
    # parallel workers (INSERT ... SELECT would not). Each expensive call appears once in the
    # statement: PostgreSQL inlines subquery expressions, so a value used twice is computed
    # twice.
    flat = sql.SQL("CASE WHEN ST_NDims(s.wkb) > 2 THEN ST_Force2D(s.wkb) ELSE s.wkb END")
    projected: sql.Composable
    valid: sql.Composable
    # Validity and emptiness were found while staging; PostGIS decides where GEOS could not
    # read the geometry (s.valid is NULL there).
    valid_source = sql.SQL("coalesce(s.valid, ST_IsValid(s.wkb))")
    if src_srid == srid:
        projected = sql.SQL("ST_SetSRID({}, {})").format(flat, sql.Literal(srid))
        valid = valid_source
    else:
        projected = sql.SQL("ST_Transform(ST_SetSRID({}, {}), {})").format(
            flat, sql.Literal(src_srid), sql.Literal(srid)
        )
        valid = sql.SQL("{} AND ST_IsValid(ST_Multi({}))").format(valid_source, projected)
    # Building a jsonb object is the dearest part of the load (int -> text -> numeric per
    # value), and most layers repeat a few code combinations: in its own subquery (OFFSET 0
    # keeps it there) the planner can memoize it per distinct combination, which it does
    # when the statistics of the staged columns show few of them (1 M AR5 features: 3.5 s
    # -> 2.1 s). Without statistics it never memoizes.
    read_by_attrs = [sql.Identifier(c) for c in attribute_columns(attrs, stager)]
    if read_by_attrs:
        # A count of distinct values is all the planner needs here: a 3 000-row sample
        # (statistics target 10) gives it in a tenth of the default's time.
        cur.execute(
            sql.SQL("ALTER TABLE {} {}").format(
                stager.table,
                sql.SQL(", ").join(
                    sql.SQL("ALTER COLUMN {} SET STATISTICS 10").format(c) for c in read_by_attrs
                ),
            )
        )
        cur.execute(
            sql.SQL("ANALYZE {} ({})").format(stager.table, sql.SQL(", ").join(read_by_attrs))
        )
    statement = sql.SQL(
        """
        CREATE TABLE {table} AS
        SELECT {vid}::integer AS version_id, s.n AS fid, a.attrs, {props} AS props,
               CASE WHEN e.empty THEN NULL ELSE ST_Multi({projected}) END AS geom,
               NOT (e.empty OR ({valid})) AS repaired,
               e.empty AS x_empty, false AS x_trimmed
          FROM {stage} s
          CROSS JOIN LATERAL (SELECT coalesce(s.empty, s.wkb IS NULL OR ST_IsEmpty(s.wkb)
                                              OR ST_NPoints(s.wkb) = 0) AS empty) e
          CROSS JOIN LATERAL (SELECT {attrs} AS attrs OFFSET 0) a
        """
    ).format(
        attrs=attrs_expression(kind, attrs),
        props=props_expression(stager, attrs, report),
        projected=projected,
        valid=valid,
        table=table,
        stage=stager.table,
        vid=sql.Literal(version_id),
    )
    try:
        cur.execute(statement)
    except psycopg.errors.InternalError as exc:  # PROJ could not transform
        raise InvalidInput(
            f"The coordinates cannot be transformed from EPSG:{src_srid} to EPSG:{srid} "
            f"({exc.diag.message_primary}). They are probably not in EPSG:{src_srid}; "
            "check the CRS of the file.",
            code="bad_coordinates",
        ) from exc
    seen = stager.geometries
    if (
        src_srid == srid
        and not (seen.unread or seen.invalid)
        and seen.types <= FAMILY_TYPES[family]
    ):
        # Nothing to repair, reproject or drop but empties: the staging checks already
        # counted and bounded what was loaded (1 M polygons: a 0.45 s scan saved).
        kept = stager.rows - seen.empty
        bounds = (seen.bounds or []) if kept else []
        return _counts(kept, 0, seen.empty, 0, 0), bounds, seen.smallest
    count_sql = sql.SQL(
        """
        SELECT count(*) FILTER (WHERE geom IS NOT NULL),
               count(*) FILTER (WHERE repaired AND geom IS NOT NULL),
               count(*) FILTER (WHERE x_empty),
               count(*) FILTER (WHERE NOT x_empty AND geom IS NULL),
               count(*) FILTER (WHERE x_trimmed),
               count(*) FILTER (WHERE repaired OR ST_GeometryType(geom) <> {multi}),
               ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)),
               ST_XMax(ST_Extent(geom)), ST_YMax(ST_Extent(geom)),
               -- halves, so that a coordinate near the float limit cannot overflow
               min(greatest(ST_XMax(geom) / 2 - ST_XMin(geom) / 2,
                            ST_YMax(geom) / 2 - ST_YMin(geom) / 2))
          FROM {table}
        """
    ).format(table=table, multi=sql.Literal(MULTI[family]))
    row = cur.execute(count_sql).fetchone()
    assert row is not None
    if row[5]:
        _refuse_non_finite(cur, table)
        # Step 2, only the invalid or mixed features: repair, keep the family's parts.
        try:
            cur.execute(
                sql.SQL(
                    """
                    UPDATE {table} t
                       SET geom = CASE WHEN ST_IsEmpty(f.x) THEN NULL ELSE ST_Multi(f.x) END,
                           x_trimmed = ST_GeometryType(f.g2) = 'ST_GeometryCollection'
                                       AND NOT ST_IsEmpty(f.x)
                                       AND ST_NumGeometries(f.x) <> ST_NumGeometries(f.g2)
                      FROM (SELECT fid, g2, ST_CollectionExtract(g2, {family}) AS x
                              FROM (SELECT fid,
                                           CASE WHEN repaired THEN ST_MakeValid(geom) ELSE geom END
                                               AS g2
                                      FROM {table}
                                     WHERE geom IS NOT NULL
                                       AND (repaired OR ST_GeometryType(geom) <> {multi})
                                    OFFSET 0) a
                            OFFSET 0) f
                     WHERE t.fid = f.fid
                    """
                ).format(table=table, family=sql.Literal(family), multi=sql.Literal(MULTI[family]))
            )
        except psycopg.errors.InternalError as exc:  # GEOS refused a geometry outright
            raise InvalidInput(
                "Some geometries are too broken to repair "
                f"({exc.diag.message_primary}). Check them in QGIS (Vector > Geometry "
                "Tools > Check Validity) and fix or remove them.",
                code="unrepairable_geometry",
            ) from exc
        row = cur.execute(count_sql).fetchone()
    assert row is not None
    kept, repaired, empty, wrong, trimmed = (int(v) for v in row[:5])
    bbox = [float(v) for v in row[6:10]] if kept else []
    smallest = 2 * float(row[10]) if row[10] is not None else None
    return _counts(kept, repaired, empty, wrong, trimmed), bbox, smallest


def _finish_table(
    cur: psycopg.Cursor[Any], table: sql.Composable, version_id: int, counts: dict[str, int]
) -> None:
    """Drop what was not kept and give the table the shape of a partition."""
    if counts["dropped_empty"] or counts["dropped_wrong_type"]:
        cur.execute(sql.SQL("DELETE FROM {} WHERE geom IS NULL").format(table))
    # Same columns and NOT NULLs as the parent, and a constraint implying the partition's
    # bound: what ATTACH PARTITION requires. One CHECK, verified in one scan, proves both
    # the NOT NULLs and the bound, so neither SET NOT NULL nor ATTACH scans the table again.
    not_null = ("version_id", "fid", "attrs", "props", "geom", "repaired")
    cur.execute(
        sql.SQL(
            "ALTER TABLE {t} DROP COLUMN x_empty, DROP COLUMN x_trimmed, "
            "ADD CONSTRAINT {name} CHECK (version_id = {vid} AND {not_null})"
        ).format(
            t=table,
            name=sql.Identifier(f"feature_v{version_id}_version"),
            vid=sql.Literal(version_id),
            not_null=sql.SQL(" AND ").join(
                sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in not_null
            ),
        )
    )
    cur.execute(
        sql.SQL("ALTER TABLE {} {}").format(
            table,
            sql.SQL(", ").join(
                sql.SQL("ALTER COLUMN {} SET NOT NULL").format(sql.Identifier(c)) for c in not_null
            ),
        )
    )


def _counts(kept: int, repaired: int, empty: int, wrong: int, trimmed: int) -> dict[str, int]:
    return {
        "kept": kept,
        "repaired": repaired,
        "dropped_empty": empty,
        "dropped_wrong_type": wrong,
        "trimmed": trimmed,
    }


def _check_extent(
    cur: psycopg.Cursor[Any],
    table: sql.Composable,
    stage: sql.Composable,
    source: crs.SourceCrs,
    srid: int,
) -> None:
    """Refuse data that does not lie in Norway, and say what probably went wrong.

    The sample is the first features as stored (file order, unless the load ran in
    parallel): taking them in fid order would sort the whole layer first.
    """
    points = cur.execute(
        sql.SQL(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM {} LIMIT %s) s"
        ).format(table),
        (EXTENT_SAMPLE,),
    ).fetchall()
    total = len(points)
    outside = int(total - crs.inside_norway(*_xy(points), srid).sum())
    if total == 0 or outside <= EXTENT_TOLERANCE * total:
        return
    bbox = cur.execute(
        sql.SQL(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(wkb) AS e FROM {}) x"
        ).format(stage)
    ).fetchone()
    assert bbox is not None
    box = ", ".join(f"{v:.6g}" for v in bbox)
    raw = cur.execute(
        sql.SQL(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(wkb) AS p FROM {} "
            "WHERE wkb IS NOT NULL AND NOT ST_IsEmpty(wkb) ORDER BY n LIMIT 200) s"
        ).format(stage)
    ).fetchall()
    cause = crs.likely_cause(*_xy(raw), source)
    raise InvalidInput(
        f"{outside} of {total} sampled features do not lie in Norway when the coordinates are "
        f"read as {source.label}. The data's bounding box is ({box}) in the file's units. "
        f"{cause} To import data outside Norway anyway, turn the extent check off "
        "(check_extent=false).",
        code="outside_norway",
        bbox=[float(v) for v in bbox],
        source_crs=source.label,
    )


KOMMUNE_SAMPLE = 200
# The kommune's polygon, from the active boundaries layers (bound: the kommune number).
_KOMMUNE_SQL = """
CREATE TEMP TABLE kommune_area ON COMMIT DROP AS
SELECT ST_Union(f.geom) AS g, max(coalesce(f.attrs->>'navn', '')) AS navn
  FROM geoservice.feature f JOIN geoservice.layer l
    ON l.active_version_id = f.version_id AND l.kind = 'boundaries'
 WHERE f.attrs->>'kommunenummer' = %(k)s
"""


def _said_kommune(cur: psycopg.Cursor[Any], table: sql.Composable, named: str | None) -> str | None:
    """The kommune the upload names, else the one most of its features carry (4 digits)."""
    if named:
        return named.strip().zfill(4)
    row = cur.execute(
        sql.SQL(
            "SELECT attrs->>'kommunenummer', count(*) FROM {} WHERE attrs ? 'kommunenummer' "
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).format(table)
    ).fetchone()
    return str(row[0]).strip().zfill(4) if row and row[0] else None


def _check_kommune(
    cur: psycopg.Cursor[Any],
    table: sql.Composable,
    stage: sql.Composable,
    source: crs.SourceCrs,
    srid: int,
    named: str | None,
) -> None:
    """Data that names its kommune (KOMM of a plan, or ``kommune`` on the upload) must lie in
    it, by the active boundaries layer; else 422 with the CRS that would put it there (a plan
    in UTM 33 labelled UTM 32 lands 340 km west and still in Norway)."""
    kommune = _said_kommune(cur, table, named)
    if kommune is None:
        return
    cur.execute("DROP TABLE IF EXISTS kommune_area")
    cur.execute(_KOMMUNE_SQL, {"k": kommune})
    area = cur.execute("SELECT g IS NOT NULL, navn FROM kommune_area").fetchone()
    if area is None or not area[0]:
        if named:
            raise InvalidInput(
                f"Kommune {kommune} is not in the active boundaries layer; give a four-digit "
                "kommunenummer of it (e.g. 3218 for Ås), or upload the boundaries first.",
                code="unknown_kommune",
            )
        return  # no boundaries to check against
    name = area[1] or kommune
    inside = cur.execute(
        sql.SQL(
            "SELECT count(*), count(*) FILTER (WHERE ST_Intersects(p, k.g)) FROM "
            "(SELECT ST_PointOnSurface(geom) AS p FROM {} LIMIT %s) s, kommune_area k"
        ).format(table),
        (KOMMUNE_SAMPLE,),
    ).fetchone()
    assert inside is not None
    total, within = int(inside[0]), int(inside[1])
    if total == 0 or within >= (1 - EXTENT_TOLERANCE) * total:
        cur.execute("DROP TABLE kommune_area")
        return
    raw = cur.execute(
        sql.SQL(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(wkb) AS p FROM {} "
            "WHERE wkb IS NOT NULL AND NOT ST_IsEmpty(wkb) ORDER BY n LIMIT %s) s"
        ).format(stage),
        (KOMMUNE_SAMPLE,),
    ).fetchall()
    shape = cur.execute("SELECT ST_AsBinary(g) FROM kommune_area").fetchone()
    assert shape is not None
    cause = crs.kommune_cause(*_xy(raw), source, bytes(shape[0]), srid, name)
    raise InvalidInput(
        f"{total - within} of {total} sampled features do not lie in kommune {kommune} "
        f"({name}), which {'the upload names' if named else 'the features name (kommunenummer)'}"
        f", when read as {source.label}. {cause} To import anyway, turn the extent check off "
        "(check_extent=false).",
        code="outside_kommune",
        kommune=kommune,
        source_crs=source.label,
    )


def _xy(rows: list[Any]) -> tuple[list[float], list[float]]:
    """Point rows (x, y) as two lists; points PostGIS could not place count as outside."""
    xs = [float("nan") if r[0] is None else float(r[0]) for r in rows]
    ys = [float("nan") if r[1] is None else float(r[1]) for r in rows]
    return xs, ys
