"""The one place that opens vector files: format checks, safe unzipping and streamed reading.

Reading goes through pyogrio's Arrow stream, so memory stays bounded by the batch size
whatever the file size.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from core.errors import InvalidInput, PayloadTooLarge
from layers.gdal_env import gdal_message, harden
from layers.signatures import check_signature

harden()

VECTOR_SUFFIXES = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".zip": "zipped Shapefile or File Geodatabase",
    ".fgb": "FlatGeobuf",
    ".gml": "GML",
    ".sos": "SOSI",
    ".csv": "CSV with WKT",
}
# CSV: the geometry column may be called any of these (GDAL open option).
CSV_OPTIONS = {"GEOM_POSSIBLE_NAMES": "wkt,WKT,geometry,geom,the_geom", "KEEP_GEOM_COLUMNS": "NO"}
MAX_ZIP_MEMBERS = 1000
MIN_BATCH, MAX_BATCH = 256, 16384
GEOM_COLUMN = "__geom"
FID_COLUMN = "__fid"
# The parts of a Shapefile GDAL reads; nothing else in a zip is extracted.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


@dataclass(frozen=True)
class SourceInfo:
    """What a file holds, read without loading its features."""

    path: Path
    format: str
    layer: str
    crs: str | None
    fields: list[str]
    geometry_type: str
    feature_count: int
    layers: list[str]
    arrow_fields: list[tuple[str, pa.DataType]]
    display_name: str = ""

    @property
    def shown(self) -> str:
        """The name a person gave the file (never the path it is kept under)."""
        return self.display_name or self.path.name


# GML: GDAL would write a .gfs schema file next to the file it reads.
GML_OPTIONS = {"WRITE_GFS": "NO"}


def _open_options(path: Path) -> dict[str, str]:
    return {".csv": CSV_OPTIONS, ".gml": GML_OPTIONS}.get(path.suffix.lower(), {})


def _shapefile_members(archive: str, infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The one Shapefile's parts in a zip, chosen by name before anything is extracted."""
    shps = [
        m
        for m in infos
        if PurePosixPath(m.filename).suffix.lower() == ".shp"
        and not PurePosixPath(m.filename).name.startswith("._")
    ]
    if not shps:
        inside = ", ".join(sorted(PurePosixPath(m.filename).name for m in infos)[:10])
        raise InvalidInput(
            f"{archive} holds no Shapefile (.shp); it contains: {inside or 'nothing'}.",
            code="zip_without_shp",
        )
    if len(shps) > 1:
        names = ", ".join(PurePosixPath(s.filename).name for s in shps)
        raise InvalidInput(
            f"{archive} holds several Shapefiles ({names}); upload one per zip.",
            code="zip_many_shp",
        )
    stem = PurePosixPath(shps[0].filename).with_suffix("")
    parts = [
        m
        for m in infos
        if PurePosixPath(m.filename).with_suffix("") == stem
        and PurePosixPath(m.filename).suffix.lower() in SHAPEFILE_PARTS
    ]
    for sidecar in (".shx", ".dbf"):
        if not any(PurePosixPath(m.filename).suffix.lower() == sidecar for m in parts):
            raise InvalidInput(
                f"{archive}: {stem.name}.shp comes without its {sidecar} file; zip all the "
                "Shapefile's parts (.shp, .shx, .dbf, .prj).",
                code="zip_incomplete_shp",
            )
    return parts


# The files a File Geodatabase folder holds (a00000001.gdbtable, gdb, timestamps, ...):
# plain names, nothing that could be a path.
_GDB_FILE = re.compile(r"^(a[0-9a-f]{8}\.[a-z]+|gdb|timestamps)$", re.IGNORECASE)


def _filegdb_members(archive: str, infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo] | None:
    """The one File Geodatabase's files in a zip (as Geonorge delivers AR5), or None when the
    zip holds no ``.gdb`` folder."""
    folders = {
        parent
        for m in infos
        for parent in PurePosixPath(m.filename).parents
        if parent.suffix.lower() == ".gdb"
    }
    if not folders:
        return None
    if len(folders) > 1:
        names = ", ".join(sorted(f.name for f in folders))
        raise InvalidInput(
            f"{archive} holds several File Geodatabases ({names}); upload one per zip.",
            code="zip_many_gdb",
        )
    [folder] = folders
    members = [m for m in infos if PurePosixPath(m.filename).parent == folder]
    odd = [m.filename for m in members if not _GDB_FILE.match(PurePosixPath(m.filename).name)]
    if odd or not any(PurePosixPath(m.filename).name == "a00000001.gdbtable" for m in members):
        raise InvalidInput(
            f"{folder.name} in {archive} is not a File Geodatabase as ArcGIS or GDAL write it"
            + (f" (unexpected files: {', '.join(odd[:5])})" if odd else " (no system table)")
            + ". Export it again, or upload the data as GeoPackage.",
            code="corrupt_file",
        )
    return members


def extract_from_zip(
    archive: Path, target: Path, *, max_bytes: int, display_name: str | None = None
) -> Path:
    """Unzip only the Shapefile's parts, or the one File Geodatabase's files, under names of
    our own, counting the bytes written; returns what GDAL should open.

    Member names never become paths (Shapefile parts are written as ``layer.shp`` etc., a
    geodatabase's files by their checked plain names into ``layer.gdb``), so a zip cannot
    write outside ``target``; the bytes actually written, not the headers, are held against
    ``max_bytes``.
    """
    shown = display_name or archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise InvalidInput(
            f"{shown} is not a readable zip archive (it may be truncated or corrupt).",
            code="corrupt_file",
        ) from exc
    with zf:
        infos = [m for m in zf.infolist() if not m.is_dir()]
        if len(infos) > MAX_ZIP_MEMBERS:
            raise InvalidInput(
                f"{shown} holds {len(infos)} files; at most {MAX_ZIP_MEMBERS} are accepted.",
                code="zip_too_many_files",
            )
        gdb = _filegdb_members(shown, infos)
        if gdb is not None:
            (target / "layer.gdb").mkdir()
            plan = [(m, target / "layer.gdb" / PurePosixPath(m.filename).name) for m in gdb]
            what = "File Geodatabase"
        else:
            parts = _shapefile_members(shown, infos)
            plan = [
                (m, target / ("layer" + PurePosixPath(m.filename).suffix.lower())) for m in parts
            ]
            what = "Shapefile"
        declared = sum(m.file_size for m, _ in plan)
        if declared > max_bytes:
            raise PayloadTooLarge(
                f"The {what} in {shown} would unpack to {declared / 1e6:.0f} MB, more than "
                f"the {max_bytes / 1e6:.0f} MB limit (GEOSERVICE_MAX_UPLOAD_MB).",
                code="zip_bomb",
            )
        written = 0
        for member, dest in plan:
            try:
                with zf.open(member) as src, dest.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            raise PayloadTooLarge(
                                f"The {what} in {shown} unpacks to more than the "
                                f"{max_bytes / 1e6:.0f} MB limit (GEOSERVICE_MAX_UPLOAD_MB).",
                                code="zip_bomb",
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                raise InvalidInput(
                    f"{member.filename} in {shown} cannot be unpacked ({exc}); re-create the "
                    "zip without encryption, with the usual (deflate) compression.",
                    code="corrupt_file",
                ) from exc
        if gdb is not None:
            return target / "layer.gdb"
        shp = target / "layer.shp"
        check_signature(shp, ".shp", display_name=f"{stem_name(parts)} in {shown}")
        check_signature(target / "layer.shx", ".shx", display_name=f"the .shx in {shown}")
        return shp


def stem_name(parts: list[zipfile.ZipInfo]) -> str:
    """The Shapefile's own name, for messages."""
    shp = next(m for m in parts if m.filename.lower().endswith(".shp"))
    return PurePosixPath(shp.filename).name


def unsupported_format(
    shown: str, suffix: str, *, rasters: bool = False, head: bytes = b""
) -> InvalidInput:
    """The error for a file ending we do not read, listing the ones we do; a Geosynkronisering
    change log (``head``: its first bytes) is told to fetch the dataset instead."""
    if b"TransactionCollection" in head and b"geosynkronisering" in head.lower():
        return InvalidInput(
            f"{shown} is a Geosynkronisering change log (changes wrapped in wfs:Insert), not a "
            "dataset. Download the dataset itself (GML or SOSI) from Geonorge or the data "
            "owner and upload that.",
            code="change_log",
        )
    if suffix == ".shp":
        stem = PurePosixPath(shown).stem
        parts = ", ".join(f"{stem}{ext}" for ext in (".shx", ".dbf", ".prj"))
        return InvalidInput(
            f"{shown} is one part of a Shapefile: zip it together with {parts} (and "
            f"{stem}.cpg if there is one), then upload the .zip (e.g. zip {stem}.zip "
            f"{stem}.shp {stem}.shx {stem}.dbf {stem}.prj).",
            code="bare_shapefile",
        )
    accepted = ", ".join(f"{v} ({k})" for k, v in VECTOR_SUFFIXES.items())
    return InvalidInput(
        f"{shown}: unsupported file type {suffix or '(none)'}. Accepted: {accepted}"
        + (", GeoTIFF (.tif) for raster kinds." if rasters else "."),
        code="unsupported_format",
    )


@dataclass(frozen=True)
class Prepared:
    """The path GDAL should open for an upload, and what was done to make it readable."""

    path: Path
    notes: list[str]
    layer: str | None = None


def dataset_path(
    path: Path,
    workdir: Path,
    *,
    max_unzipped_bytes: int,
    display_name: str | None = None,
    layer: str | None = None,
    geometry: str | None = None,
) -> Prepared:
    """The path GDAL should open, after the content was checked against the file's ending:
    the file itself, the Shapefile unpacked from a zip, or a SOSI file converted by GDAL's
    SOSI driver (``geometry="polygon"`` refuses a SOSI file without areas)."""
    shown = display_name or path.name
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise InvalidInput(f"{shown} is empty (0 bytes).", code="empty_file")
    if suffix not in VECTOR_SUFFIXES:
        if suffix == ".shp":  # a file on this machine: say which of its parts are there
            missing = [e for e in (".shx", ".dbf", ".prj") if not path.with_suffix(e).exists()]
            error = unsupported_format(shown, suffix)
            if missing and path.name == shown:
                raise InvalidInput(
                    f"{error.detail} Next to it there is no {', '.join(missing)}: the Shapefile "
                    "is incomplete without them.",
                    code="bare_shapefile",
                )
            raise error
        with path.open("rb") as fh:
            raise unsupported_format(shown, suffix, head=fh.read(4096))
    check_signature(path, suffix, display_name=shown)
    if suffix == ".sos":
        from layers import sosi

        converted = sosi.convert(path, workdir, display_name=shown, layer=layer, needs=geometry)
        return Prepared(converted.path, converted.notes, converted.layer)
    if suffix != ".zip":
        return Prepared(path, [], layer)
    inner = extract_from_zip(path, workdir, max_bytes=max_unzipped_bytes, display_name=shown)
    return Prepared(inner, [], layer)


# OGR geometry type codes that GDAL reads but cannot hand over as simple features.
SURFACE_TYPES = {
    "1016": "3D terrain as triangles (TIN, such as a plan's RpRegulertTerreng)",
    "1015": "polyhedral surfaces",
    "1017": "triangles",
}


def _unreadable(exc: BaseException, path: Path, shown: str, fmt: str) -> InvalidInput:
    """The 422 for a layer GDAL cannot read; surfaces we do not import say so by name."""
    said = gdal_message(exc, path, shown)
    code = said.rsplit(":", 1)[-1].strip() if "Geometry type is not supported" in said else ""
    if code in SURFACE_TYPES:
        return InvalidInput(
            f"{shown} holds {SURFACE_TYPES[code]}, which this service does not import. Upload "
            "the 2D areas (for a plan: its arealformål areas, RpArealformålOmråde or "
            "KpArealformålOmråde).",
            code="unsupported_geometry",
        )
    return InvalidInput(
        f"{shown} could not be read as {fmt}: {said}. The file may be truncated, corrupt or "
        "of another format.",
        code="corrupt_file",
    )


def has_prj(shp: Path) -> bool:
    """Shapefiles carry their CRS in a sidecar .prj file."""
    return any(p.suffix.lower() == ".prj" and p.stem == shp.stem for p in shp.parent.iterdir())


def inspect(
    path: Path,
    layer: str | None = None,
    *,
    display_name: str | None = None,
    prefer: tuple[str, ...] = (),
    areas: bool = False,
) -> SourceInfo:
    """Describe the (chosen) layer of a dataset; corrupt files become a clear 422. Of a file
    with several layers, the first of ``prefer`` it has is taken without asking; a kind with
    no such names that wants ``areas`` takes the file's only polygon layer (AR5 comes with
    its areas beside its boundary lines)."""
    shown = display_name or path.name
    fmt = VECTOR_SUFFIXES.get(path.suffix.lower(), "Shapefile")
    if path.suffix.lower() == ".shp":
        fmt = "Shapefile"
    elif path.suffix.lower() == ".gdb":
        fmt = "File Geodatabase"
    try:
        listed = [(str(row[0]), str(row[1])) for row in pyogrio.list_layers(path)]
        layers = [name for name, _ in listed]
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise _unreadable(exc, path, shown, fmt) from exc
    if not layers:
        raise InvalidInput(f"{shown} contains no layers.", code="empty_file")
    if layer is None:
        layer = next((p for p in prefer if p in layers), None)
    if layer is None and areas and not prefer and len(layers) > 1:
        polygons = [name for name, kind in listed if "Polygon" in kind]
        layer = polygons[0] if len(polygons) == 1 else None
    if layer is None:
        if len(layers) > 1:
            wanted = (
                f" None of them is {' or '.join(prefer)}, the layer this kind is made from."
                if prefer
                else ""
            )
            raise InvalidInput(
                f"{shown} has {len(layers)} layers: {', '.join(layers)}.{wanted} Say which one "
                "to import (layer=<name>, or --layer on the command line).",
                code="choose_layer",
                layers=layers,
            )
        layer = layers[0]
    elif layer not in layers:
        raise InvalidInput(
            f"{shown} has no layer {layer!r}; it has: {', '.join(layers)}.",
            code="unknown_layer",
            layers=layers,
        )
    try:
        info: dict[str, Any] = pyogrio.read_info(path, layer=layer, **_open_options(path))
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise _unreadable(exc, path, shown, fmt) from exc
    try:
        with pyogrio.open_arrow(
            path, layer=layer, batch_size=1, use_pyarrow=True, **_open_options(path)
        ) as (meta, stream):
            geometry_name = meta.get("geometry_name") or "wkb_geometry"
            fid_name = meta.get("fid_column") or "OGC_FID"
            arrow_fields = [(f.name, f.type) for f in stream.schema]
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise _unreadable(exc, path, shown, fmt) from exc
    # The geometry and the feature id travel under names of their own; an attribute that
    # bears one of them (or ours) would be mistaken for them.
    reserved = {GEOM_COLUMN, FID_COLUMN, geometry_name, fid_name}
    names = [name for name, _ in arrow_fields]
    clashes = sorted(
        {
            n
            for n in names
            if n.casefold() in {r.casefold() for r in reserved} and n != geometry_name
        }
        | {n for n in names if names.count(n) > 1}
    )
    if clashes:
        raise InvalidInput(
            f"{shown} has an attribute named {', '.join(map(repr, clashes))}, a name used for "
            "the geometry or the feature id. Rename the attribute (QGIS: Layer Properties > "
            "Fields) and upload again.",
            code="reserved_attribute_name",
            attributes=clashes,
        )
    arrow_fields = [(name, dtype) for name, dtype in arrow_fields if name != geometry_name]
    return SourceInfo(
        arrow_fields=arrow_fields,
        path=path,
        format=fmt,
        layer=layer,
        crs=info.get("crs"),
        fields=[str(f) for f in info.get("fields", [])],
        geometry_type=str(info.get("geometry_type")),
        feature_count=int(info.get("features") or 0),
        layers=layers,
        display_name=shown,
    )


@contextmanager
def record_batches(
    info: SourceInfo, batch_size: int | None = None
) -> Iterator[Iterator[pa.RecordBatch]]:
    """Stream the layer as Arrow batches; geometry (WKB) and feature id under fixed names.

    By default a layer comes in at least eight batches, so that reading the next batch
    overlaps with loading this one even for a small file, and in batches of at most 16 384
    features, so that the memory an import needs stops growing with the file early (the
    geometry checks hold each batch as GEOS objects: 50 000-feature batches made a 1 M import
    peak 85 MB above a 100 000 one, 16 384-feature batches 20 MB; equally fast).
    """
    if batch_size is None:
        eighth = -(-info.feature_count // 8) if info.feature_count > 0 else MAX_BATCH
        batch_size = min(MAX_BATCH, max(MIN_BATCH, eighth))
    try:
        with pyogrio.open_arrow(
            info.path,
            layer=info.layer,
            batch_size=batch_size,
            return_fids=True,
            use_pyarrow=True,
            **_open_options(info.path),
        ) as (meta, reader):
            rename = {
                meta.get("geometry_name") or "wkb_geometry": GEOM_COLUMN,
                meta.get("fid_column") or "OGC_FID": FID_COLUMN,
            }

            def batches() -> Iterator[pa.RecordBatch]:
                try:
                    for batch in reader:
                        yield batch.rename_columns([rename.get(n, n) for n in batch.schema.names])
                except (DataSourceError, DataLayerError, OSError, pa.ArrowException) as exc:
                    raise InvalidInput(
                        f"{info.shown} could not be read to the end: "
                        f"{gdal_message(exc, info.path, info.shown)}. "
                        "The file may be truncated or corrupt.",
                        code="corrupt_file",
                    ) from exc

            yield batches()
    except (DataSourceError, DataLayerError) as exc:
        raise InvalidInput(
            f"{info.shown} could not be read: {gdal_message(exc, info.path, info.shown)}.",
            code="corrupt_file",
        ) from exc


def check_feature_count(count: int, limit: int | None, filename: str) -> None:
    """Refuse a file with more features than one upload may carry (checked while reading too,
    since some formats only know their count at the end)."""
    if limit is not None and count > limit:
        raise PayloadTooLarge(
            f"{filename} has more than {limit:,} features, the most one upload may carry "
            "(GEOSERVICE_MAX_UPLOAD_FEATURES). Split it, or import it with the command line "
            "(geoservice layers import), which has no such limit.",
            code="too_many_features",
        )


def _read_all(
    info: SourceInfo, *, max_features: int | None
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every feature of a checked dataset as (GeoJSON geometry, properties)."""
    import shapely

    check_feature_count(info.feature_count, max_features, info.shown)
    features: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with record_batches(info) as batches:
        for batch in batches:
            check_feature_count(len(features) + batch.num_rows, max_features, info.shown)
            columns = {n: batch.column(n).to_pylist() for n in batch.schema.names}
            for i, wkb in enumerate(columns[GEOM_COLUMN]):
                if wkb is None:
                    continue
                props = {k: v[i] for k, v in columns.items() if k not in (GEOM_COLUMN, FID_COLUMN)}
                features.append((shapely.geometry.mapping(shapely.from_wkb(wkb)), props))
    return features


def read_vector_file(
    path: Path,
    workdir: Path,
    *,
    layer: str | None = None,
    max_unzipped_bytes: int = 1_000_000_000,
    max_features: int | None = None,
    display_name: str | None = None,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], str | None]:
    """Features of a (small) vector file read whole (footprints, restoration projects; zips
    unpacked into ``workdir``), with the CRS the file declares (None if it says nothing)."""
    shown = display_name or path.name
    dataset = dataset_path(
        path, workdir, max_unzipped_bytes=max_unzipped_bytes, display_name=shown, layer=layer
    )
    info = inspect(dataset.path, dataset.layer, display_name=shown)
    return _read_all(info, max_features=max_features), info.crs


def features_from_file(
    path: Path,
    workdir: Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    max_unzipped_bytes: int = 1_000_000_000,
    max_features: int | None = None,
    display_name: str | None = None,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], str]:
    """:func:`read_vector_file`, with the CRS to read the features in: ``crs`` when given,
    else the file's; no CRS at all is refused."""
    from layers.crs import resolve_source_crs

    features, file_crs = read_vector_file(
        path,
        workdir,
        layer=layer,
        max_unzipped_bytes=max_unzipped_bytes,
        max_features=max_features,
        display_name=display_name,
    )
    return features, resolve_source_crs(file_crs, crs).label
