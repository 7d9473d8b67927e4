"""``/api/layers``: upload, list, inspect, version and export layers."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile as StarletteUpload

from core.errors import BadRequest, PayloadTooLarge
from geoservice.dependencies import EngineDep, Id, Limit, Offset, SettingsDep, VersionQuery, page
from geoservice.models import Layer, LayerVersions, Page
from geoservice.security import AdminDep, GisDep, audit_note
from geoservice.settings import Settings
from layers import catalog
from layers.export import ExportFormat, export_layer
from layers.ingest import ImportOptions, import_file
from layers.rasters import RASTER_SUFFIXES, parse_pools
from layers.reader import VECTOR_SUFFIXES, unsupported_format
from layers.result import ImportResult

UPLOAD_SUFFIXES = frozenset(VECTOR_SUFFIXES) | RASTER_SUFFIXES
MEDIA_TYPES = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "tif": "image/tiff; application=geotiff; profile=cloud-optimized",
}


def display_name(filename: str | None) -> str:
    """The upload's name as the user gave it, fit for messages and provenance only: never a
    path on this machine (control characters dropped, at most 120 characters)."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if name in ("", ".", ".."):
        return "upload"
    if len(name) > 120:
        suffix = PurePosixPath(name).suffix[:10]
        name = name[: 120 - len(suffix) - 1] + "…" + suffix
    return name


def save_upload(
    upload: StarletteUpload, settings: Settings, workdir: Path
) -> tuple[Path, str, str]:
    """Copy the upload to disk under a name of our own, refusing it as soon as it passes the
    size limit; returns the file, its SHA-256 (hashed on the way, not read again: 1 M
    polygons are 250 MB) and the name the user gave it."""
    shown = display_name(upload.filename)
    suffix = PurePosixPath(shown).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        head = upload.file.read(4096)
        raise unsupported_format(shown, suffix, rasters=True, head=head)
    target = workdir / f"upload{suffix}"
    limit = settings.max_upload_bytes
    size = 0
    digest = hashlib.sha256()
    with target.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"{shown} is larger than the upload limit of {settings.max_upload_mb} MB.",
                    code="upload_too_large",
                )
            digest.update(chunk)
            out.write(chunk)
    return target, digest.hexdigest(), shown


def layers_router() -> APIRouter:
    """Build the layer store router."""
    router = APIRouter(prefix="/api/layers", tags=["layers"])

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        summary="Upload a layer version",
        response_model=ImportResult,  # the ingest's own result type
    )
    def upload_layer(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        who: GisDep,
        file: Annotated[
            UploadFile,
            File(
                description="GeoJSON, GeoPackage, zipped Shapefile, "
                "FlatGeobuf, GML or CSV with a WKT column"
            ),
        ],
        kind: Annotated[
            str,
            Form(
                description="land_cover, land_use_plan, nature_types, peat, "
                "degraded_areas, protected_areas, boundaries or generic"
            ),
        ],
        name: Annotated[str, Form(description="Layer name; an existing name gets a new version")],
        crs: Annotated[
            str | None,
            Form(
                description="CRS of the file, e.g. EPSG:25833; required when the file does not say"
            ),
        ] = None,
        layer: Annotated[str | None, Form(description="Layer inside a multi-layer file")] = None,
        field_map: Annotated[
            str | None, Form(description='JSON, e.g. {"arealtype": "MYTYPE"}')
        ] = None,
        licence: Annotated[str | None, Form(description="Licence / attribution text")] = None,
        keep_unknown: Annotated[
            bool, Form(description="Store unknown codes as unknown instead of refusing the file")
        ] = False,
        check_extent: Annotated[bool, Form(description="Refuse data outside Norway")] = True,
        kommune: Annotated[
            str | None,
            Form(
                pattern=r"^\d{4}$",
                description="Kommunenummer the data must lie in (plans: default their KOMM)",
            ),
        ] = None,
        pools: Annotated[
            str | None,
            Form(description="carbon_density rasters: pools covered, e.g. c_above,c_below"),
        ] = None,
    ) -> dict[str, Any]:
        """Validate the file and publish it as the layer's new active version (all or nothing)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + 65536:
            raise PayloadTooLarge(
                f"The upload is larger than the limit of {settings.max_upload_mb} MB.",
                code="upload_too_large",
            )
        try:
            mapping = json.loads(field_map) if field_map else {}
        except json.JSONDecodeError as exc:
            raise BadRequest(f"field_map is not valid JSON: {exc.msg}.") from exc
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise BadRequest('field_map must be a JSON object like {"arealtype": "MYTYPE"}.')
        uploads = settings.data_path / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=uploads) as workdir:
            path, sha256, shown = save_upload(file, settings, Path(workdir))
            result = import_file(
                engine,
                path,
                ImportOptions(
                    kind=kind,
                    name=name,
                    crs=crs or None,
                    layer=layer or None,
                    field_map=mapping,
                    licence=licence,
                    keep_unknown=keep_unknown,
                    check_extent=check_extent,
                    kommune=kommune or None,
                    source_filename=shown,
                    source_sha256=sha256,
                    pools=parse_pools(pools),
                    uploader=who.user,
                ),
                storage_srid=settings.storage_srid,
                max_unzipped_bytes=settings.max_upload_bytes,
                max_features=settings.max_upload_features,
                data_dir=settings.data_path,
            )
        audit_note(request, layer_id=result.layer_id, version_after=result.version)
        return result.as_dict()

    @router.get("", summary="List layers", response_model=Page[Layer])
    def list_layers(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Layers, newest first, with their active version's provenance."""
        limit = min(limit, settings.max_page_size)
        items, total = catalog.list_layers(engine, limit=limit, offset=offset)
        return page(request, items, total, limit, offset)

    @router.get("/{layer_id}", summary="One layer", response_model=Layer)
    def get_layer(layer_id: Id, engine: EngineDep) -> dict[str, Any]:
        """A layer and the provenance of its active version."""
        return catalog.get_layer(engine, layer_id)

    @router.get(
        "/{layer_id}/versions", summary="All versions of a layer", response_model=LayerVersions
    )
    def list_versions(layer_id: Id, engine: EngineDep) -> dict[str, Any]:
        """Every version with its provenance; ``active`` marks the one in use."""
        return {"layer_id": layer_id, "versions": catalog.list_versions(engine, layer_id)}

    @router.post(
        "/{layer_id}/versions/{version}/activate",
        summary="Re-activate a version",
        response_model=Layer,
    )
    def activate(
        request: Request, layer_id: Id, version: Id, engine: EngineDep, who: AdminDep
    ) -> dict[str, Any]:
        """Make ``version`` the active version of the layer again."""
        before = catalog.get_layer(engine, layer_id)["active_version"]
        layer = catalog.activate_version(engine, layer_id, version)
        audit_note(
            request,
            version_before=before["version"] if before else None,
            version_after=layer["active_version"]["version"],
        )
        return layer

    @router.get("/{layer_id}/export", summary="Download a layer as GeoJSON or GeoPackage")
    def export(
        layer_id: Id,
        engine: EngineDep,
        settings: SettingsDep,
        format: Annotated[
            ExportFormat, Query(description="geojson or gpkg (vector), tif (raster)")
        ] = "gpkg",
        version: VersionQuery = None,
        crs: Annotated[str | None, Query(description="Output CRS; default storage")] = None,
    ) -> FileResponse:
        """Write the version to a file in the requested format and CRS."""
        exports = settings.data_path / "exports"
        exports.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(dir=exports))
        try:
            path = export_layer(
                engine,
                layer_id,
                workdir,
                fmt=format,
                version=version,
                crs=crs,
                storage_srid=settings.storage_srid,
            )
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return FileResponse(
            path,
            media_type=MEDIA_TYPES[format],
            filename=path.name,
            background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
        )

    return router
