"""The one place that opens vector files: format checks, safe unzipping and streamed reading.

Reading goes through pyogrio's Arrow stream, so memory stays bounded by the batch size
whatever the file size.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from geoservice.errors import InvalidInput, PayloadTooLarge

VECTOR_SUFFIXES = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".zip": "zipped Shapefile",
    ".fgb": "FlatGeobuf",
    ".gml": "GML",
    ".csv": "CSV with WKT",
}
# CSV: the geometry column may be called any of these (GDAL open option).
CSV_OPTIONS = {"GEOM_POSSIBLE_NAMES": "wkt,WKT,geometry,geom,the_geom", "KEEP_GEOM_COLUMNS": "NO"}
MAX_ZIP_MEMBERS = 1000
MIN_BATCH, MAX_BATCH = 256, 16384
GEOM_COLUMN = "__geom"
FID_COLUMN = "__fid"
MAX_ZIP_RATIO = 200


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


def _open_options(path: Path) -> dict[str, str]:
    return CSV_OPTIONS if path.suffix.lower() == ".csv" else {}


def safe_extract(archive: Path, target: Path, *, max_bytes: int) -> list[Path]:
    """Unzip, refusing paths that escape ``target`` and archives that inflate beyond reason."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise InvalidInput(
            f"{archive.name} is not a readable zip archive (it may be truncated or corrupt).",
            code="corrupt_file",
        ) from exc
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_ZIP_MEMBERS:
            raise InvalidInput(
                f"{archive.name} holds {len(members)} files; "
                f"at most {MAX_ZIP_MEMBERS} are accepted.",
                code="zip_too_many_files",
            )
        total = sum(m.file_size for m in members)
        packed = max(1, sum(m.compress_size for m in members))
        if total > max_bytes or (total > 50_000_000 and total / packed > MAX_ZIP_RATIO):
            raise PayloadTooLarge(
                f"{archive.name} would unpack to {total / 1e6:.0f} MB "
                f"({total / packed:.0f}× its packed size); that looks like a zip bomb or exceeds "
                f"the {max_bytes / 1e6:.0f} MB limit.",
                code="zip_bomb",
            )
        extracted: list[Path] = []
        root = target.resolve()
        for member in members:
            name = PurePosixPath(member.filename.replace("\\", "/"))
            dest = (root / name).resolve()
            if name.is_absolute() or ".." in name.parts or not dest.is_relative_to(root):
                raise InvalidInput(
                    f"{archive.name} contains the path {member.filename!r}, which points outside "
                    "the archive (zip-slip). Re-create the zip with plain relative paths.",
                    code="zip_slip",
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, dest.open("wb") as out:
                remaining = member.file_size + 1
                while chunk := src.read(1 << 20):
                    remaining -= len(chunk)
                    if remaining < 0:  # header lied about the size
                        raise PayloadTooLarge(
                            f"{member.filename} in {archive.name} is larger than its header says.",
                            code="zip_bomb",
                        )
                    out.write(chunk)
            extracted.append(dest)
        return extracted


def dataset_path(path: Path, workdir: Path, *, max_unzipped_bytes: int) -> Path:
    """The path GDAL should open: the file itself, or the Shapefile inside a zip."""
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path.name} is empty (0 bytes).", code="empty_file")
    if suffix not in VECTOR_SUFFIXES:
        raise InvalidInput(
            f"{path.name}: unsupported file type {suffix or '(none)'}. Accepted: "
            + ", ".join(f"{v} ({k})" for k, v in VECTOR_SUFFIXES.items())
            + ".",
            code="unsupported_format",
        )
    if suffix != ".zip":
        return path
    files = safe_extract(path, workdir, max_bytes=max_unzipped_bytes)
    shps = [f for f in files if f.suffix.lower() == ".shp" and not f.name.startswith("._")]
    if not shps:
        inside = ", ".join(sorted(f.name for f in files)[:10]) or "nothing"
        raise InvalidInput(
            f"{path.name} holds no Shapefile (.shp); it contains: {inside}.",
            code="zip_without_shp",
        )
    if len(shps) > 1:
        raise InvalidInput(
            f"{path.name} holds several Shapefiles ({', '.join(s.name for s in shps)}); "
            "upload one per zip.",
            code="zip_many_shp",
        )
    shp = shps[0]
    for sidecar in (".shx", ".dbf"):
        if not any(f.suffix.lower() == sidecar and f.stem == shp.stem for f in files):
            raise InvalidInput(
                f"{path.name}: {shp.name} comes without its {sidecar} file; zip all the "
                "Shapefile's parts (.shp, .shx, .dbf, .prj).",
                code="zip_incomplete_shp",
            )
    return shp


def has_prj(shp: Path) -> bool:
    """Shapefiles carry their CRS in a sidecar .prj file."""
    return any(p.suffix.lower() == ".prj" and p.stem == shp.stem for p in shp.parent.iterdir())


def inspect(path: Path, layer: str | None = None) -> SourceInfo:
    """Describe the (chosen) layer of a dataset; corrupt files become a clear 422."""
    fmt = VECTOR_SUFFIXES.get(path.suffix.lower(), "Shapefile")
    if path.suffix.lower() == ".shp":
        fmt = "Shapefile"
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise InvalidInput(
            f"{path.name} could not be read as {fmt}: {_gdal_message(exc)}. The file may be "
            "truncated, corrupt or of another format.",
            code="corrupt_file",
        ) from exc
    if not layers:
        raise InvalidInput(f"{path.name} contains no layers.", code="empty_file")
    if layer is None:
        if len(layers) > 1:
            raise InvalidInput(
                f"{path.name} has {len(layers)} layers: {', '.join(layers)}. Say which one to "
                "import (layer=<name>, or --layer on the command line).",
                code="choose_layer",
                layers=layers,
            )
        layer = layers[0]
    elif layer not in layers:
        raise InvalidInput(
            f"{path.name} has no layer {layer!r}; it has: {', '.join(layers)}.",
            code="unknown_layer",
            layers=layers,
        )
    try:
        info: dict[str, Any] = pyogrio.read_info(path, layer=layer, **_open_options(path))
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise InvalidInput(
            f"{path.name} could not be read as {fmt}: {_gdal_message(exc)}.",
            code="corrupt_file",
        ) from exc
    try:
        with pyogrio.open_arrow(
            path, layer=layer, batch_size=1, use_pyarrow=True, **_open_options(path)
        ) as (meta, stream):
            skip = {meta.get("geometry_name") or "wkb_geometry"}
            arrow_fields = [(f.name, f.type) for f in stream.schema if f.name not in skip]
    except (DataSourceError, DataLayerError, OSError) as exc:
        raise InvalidInput(
            f"{path.name} could not be read as {fmt}: {_gdal_message(exc)}.",
            code="corrupt_file",
        ) from exc
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
                        f"{info.path.name} could not be read to the end: {_gdal_message(exc)}. "
                        "The file may be truncated or corrupt.",
                        code="corrupt_file",
                    ) from exc

            yield batches()
    except (DataSourceError, DataLayerError) as exc:
        raise InvalidInput(
            f"{info.path.name} could not be read: {_gdal_message(exc)}.", code="corrupt_file"
        ) from exc


def _gdal_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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


def read_features(
    path: Path, layer: str | None = None, *, max_features: int | None = None
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], str | None]:
    """All features of a (small) file as (GeoJSON geometry, properties), with the file's CRS.

    For inputs that are read whole (footprints, restoration projects), not stored as layers.
    """
    import shapely

    info = inspect(path, layer)
    check_feature_count(info.feature_count, max_features, path.name)
    features: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with record_batches(info) as batches:
        for batch in batches:
            check_feature_count(len(features) + batch.num_rows, max_features, path.name)
            columns = {n: batch.column(n).to_pylist() for n in batch.schema.names}
            for i, wkb in enumerate(columns[GEOM_COLUMN]):
                if wkb is None:
                    continue
                props = {k: v[i] for k, v in columns.items() if k not in (GEOM_COLUMN, FID_COLUMN)}
                features.append((shapely.geometry.mapping(shapely.from_wkb(wkb)), props))
    return features, info.crs


def read_geometries(
    path: Path, layer: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """All geometries of a (small) vector file as GeoJSON dicts, with the file's CRS."""
    features, crs = read_features(path, layer)
    return [geometry for geometry, _ in features], crs


def features_from_file(
    path: Path,
    workdir: Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    max_unzipped_bytes: int = 1_000_000_000,
    max_features: int | None = None,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], str]:
    """Features of any supported vector file (zips unpacked into ``workdir``) and the CRS to
    read them in: the file's, or ``crs`` when given; no CRS at all is refused."""
    from layers.crs import resolve_source_crs

    dataset = dataset_path(path, workdir, max_unzipped_bytes=max_unzipped_bytes)
    features, file_crs = read_features(dataset, layer, max_features=max_features)
    return features, resolve_source_crs(file_crs, crs).label
