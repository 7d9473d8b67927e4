"""Uploads that try to make GDAL read the server's files or fetch URLs: each is refused.

Every payload goes through both upload routes (layers, restoration import) while a listener
on a local port records any request the server makes.
"""

from __future__ import annotations

import http.server
import io
import json
import socketserver
import threading
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from rasterio.transform import from_origin

from layers.gdal_env import VECTOR_DRIVERS, registered_vector_drivers
from tests.conftest import authorize


class Listener:
    """A local HTTP server that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = b'{"type": "FeatureCollection", "features": []}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET
            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def vector_payloads(url: str, secret: str) -> dict[str, bytes]:
    """File name → content: indirection files dressed as the formats we accept."""
    vrt = (
        f"<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>CSV:{secret}</SrcDataSource>"
        "</OGRVRTLayer></OGRVRTDataSource>"
    ).encode()
    vrt_gml = (
        "<OGRVRTDataSource xmlns:gml='http://www.opengis.net/gml'><OGRVRTLayer name='x'>"
        f"<SrcDataSource>CSV:{secret}</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>"
    ).encode()
    vsicurl = (
        "<OGRVRTDataSource><OGRVRTLayer name='x'>"
        f"<SrcDataSource>/vsicurl/{url}/x.geojson</SrcDataSource>"
        "</OGRVRTLayer></OGRVRTDataSource>"
    ).encode()
    wfs = f"<OGRWFSDataSource><URL>{url}/wfs</URL></OGRWFSDataSource>".encode()
    gdalg = json.dumps(
        {
            "type": "gdal_streamed_alg",
            "command_line": f"gdal vector pipeline ! read /vsicurl/{url}/a.geojson ! "
            "write --of stream streamed_dataset",
        }
    ).encode()
    gdalg_feature = json.dumps(
        {
            "type": "gdal_streamed_alg",
            "command_line": f"gdal vector pipeline ! read {secret} ! write --of stream x",
            "note": {"type": "Feature"},
        }
    ).encode()
    payloads = {}
    for ending in ("json", "geojson", "gml", "csv", "gpkg", "fgb"):
        payloads[f"landcover_vrt.{ending}"] = vrt
        payloads[f"landcover_vsicurl.{ending}"] = vsicurl
    payloads["vrt_with_gml_namespace.gml"] = vrt_gml
    payloads["wfs.gml"] = wfs
    payloads["pipeline.json"] = gdalg
    payloads["pipeline_feature.geojson"] = gdalg_feature
    payloads["landcover.kml"] = vrt
    payloads["vrt_in_zip.zip"] = _zip({"x.shp": vrt, "x.shx": vrt, "x.dbf": b"\x03" + vrt})
    return payloads


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _counts(client: TestClient) -> tuple[int, int]:
    layers = client.get("/api/layers").json()["total"]
    projects = client.get("/api/restoration/projects").json()["total"]
    return int(layers), int(projects)


def test_the_process_keeps_only_the_upload_drivers(client: TestClient) -> None:
    assert registered_vector_drivers() == set(VECTOR_DRIVERS)


def test_indirection_files_are_refused_on_both_routes(
    client: TestClient, listener: Listener, settings: Any
) -> None:
    secret = str(settings.data_path / "secret.csv")
    settings.data_path.mkdir(parents=True, exist_ok=True)
    (settings.data_path / "secret.csv").write_text("token\ngs_very_secret\n")
    gis = authorize(client, "gis")
    ecologist = authorize(client, "ecologist")
    for name, content in vector_payloads(listener.url, secret).items():
        client.headers["Authorization"] = f"Bearer {gis}"
        layer = client.post(
            "/api/layers",
            files={"file": (name, content)},
            data={"kind": "land_cover", "name": "x", "crs": "EPSG:25833"},
        )
        assert layer.status_code in (413, 422), (name, layer.text)
        body = layer.json()
        assert body["error"] in ("format_mismatch", "unsupported_format"), (name, body)
        assert "gs_very_secret" not in layer.text
        client.headers["Authorization"] = f"Bearer {ecologist}"
        project = client.post(
            "/api/restoration/projects/import",
            files={"file": (name, content)},
            data={"crs": "EPSG:25833"},
        )
        assert project.status_code == 422, (name, project.text)
        assert project.json()["error"] in ("format_mismatch", "unsupported_format")
    assert _counts(client) == (0, 0)
    assert listener.requests == []


def _raster_vrt(source: str) -> bytes:
    return (
        '<VRTDataset rasterXSize="64" rasterYSize="1"><SRS>EPSG:25833</SRS>'
        "<GeoTransform>500000, 10, 0, 6600000, 0, -10</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1" subClass="VRTRawRasterBand">'
        f'<SourceFilename relativetoVRT="0">{source}</SourceFilename>'
        "</VRTRasterBand></VRTDataset>"
    ).encode()


def test_raster_indirection_is_refused(client: TestClient, listener: Listener) -> None:
    authorize(client, "gis")
    for name, content in {
        "carbon.tif": _raster_vrt("/etc/passwd"),
        "carbon_remote.tif": _raster_vrt(f"/vsicurl/{listener.url}/c.tif"),
        "carbon.tiff": _raster_vrt("/etc/hostname"),
    }.items():
        response = client.post(
            "/api/layers",
            files={"file": (name, content)},
            data={"kind": "carbon_density", "name": "c"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "format_mismatch"
        assert "VRTDataset" in response.json()["detail"]
    assert _counts(client) == (0, 0)
    assert listener.requests == []


def test_a_real_geotiff_still_uploads(client: TestClient, tmp_path: Any) -> None:
    authorize(client, "gis")
    path = tmp_path / "c.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="float32",
        crs="EPSG:25833",
        transform=from_origin(262000, 6649000, 10, 10),
    ) as dst:
        dst.write(np.full((1, 4, 4), 5.0, dtype="float32"))
    response = client.post(
        "/api/layers",
        files={"file": ("c.tif", path.read_bytes())},
        data={"kind": "carbon_density", "name": "c"},
    )
    assert response.status_code == 201, response.text
    layer = client.get(f"/api/layers/{response.json()['layer_id']}").json()
    assert layer["active_version"]["source_filename"] == "c.tif"


def test_gml_schema_and_xlinks_are_not_fetched(client: TestClient, listener: Listener) -> None:
    """A regression guard: GDAL 3.12 did not fetch these even before the hardening (checked by
    hand); GML_DOWNLOAD_SCHEMA=NO and the /vsicurl/ block keep it that way."""
    authorize(client, "gis")
    gml = f"""<?xml version="1.0" encoding="UTF-8"?>
<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0"
    xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:app="http://example.org/app"
    xmlns:xlink="http://www.w3.org/1999/xlink"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://example.org/app {listener.url}/schema.xsd">
  <wfs:member><app:omrade gml:id="o1"><app:navn>a</app:navn>
    <app:omradeLink xlink:href="{listener.url}/remote.gml#x"/>
    <app:geom><gml:Polygon gml:id="p1" srsName="urn:ogc:def:crs:EPSG::25833">
      <gml:exterior><gml:LinearRing><gml:posList>262000 6649000 262100 6649000 262100 6649100
        262000 6649100 262000 6649000</gml:posList></gml:LinearRing></gml:exterior>
    </gml:Polygon></app:geom></app:omrade></wfs:member>
</wfs:FeatureCollection>
"""
    response = client.post(
        "/api/layers",
        files={"file": ("omrade.gml", gml.encode())},
        data={"kind": "generic", "name": "omrade"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["feature_count"] == 1
    assert listener.requests == []


@pytest.mark.parametrize("name", ["..", "x" * 300 + ".geojson", "../../etc/passwd.json", "."])
def test_odd_file_names_get_a_clear_answer(client: TestClient, name: str) -> None:
    authorize(client, "gis")
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"navn": "a"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[262000, 6649000], [262100, 6649000], [262100, 6649100], [262000, 6649000]]
                    ],
                },
            }
        ],
    }
    response = client.post(
        "/api/layers",
        files={"file": (name, json.dumps(fc).encode())},
        data={"kind": "generic", "name": "odd", "crs": "EPSG:25833"},
    )
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        assert response.json()["error"] == "unsupported_format"
    else:
        layer = client.get(f"/api/layers/{response.json()['layer_id']}").json()
        shown = layer["active_version"]["source_filename"]
        assert len(shown) <= 120 and "/" not in shown
    assert "/tmp" not in response.text and ".geoservice" not in response.text


def test_error_messages_show_no_server_paths(client: TestClient, settings: Any) -> None:
    authorize(client, "gis")
    corrupt_gpkg = b"SQLite format 3\x00" + b"\x00" * 52 + b"GPKG" + b"\x13" * 4000
    truncated_fgb = b"fgb\x03fgb\x00" + b"\x07" * 300
    for name, content in {"broken.gpkg": corrupt_gpkg, "broken.fgb": truncated_fgb}.items():
        response = client.post(
            "/api/layers",
            files={"file": (name, content)},
            data={"kind": "generic", "name": "x", "crs": "EPSG:25833"},
        )
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert name in detail
        for secret in (str(settings.data_path), "/tmp", "uploads", "upload.gpkg", "upload.fgb"):
            assert secret not in detail, (secret, detail)


def test_zips_unpack_only_the_shapefile_and_count_what_they_write(
    client: TestClient, tmp_path: Any
) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    authorize(client, "gis")
    folder = tmp_path / "shp"
    folder.mkdir()
    gpd.GeoDataFrame(
        {"navn": ["a"]}, geometry=[box(262000, 6649000, 262100, 6649100)], crs=25833
    ).to_file(folder / "omrade.shp")
    parts = {p.name: p.read_bytes() for p in folder.iterdir()}
    # 300 MB of zeros next to the Shapefile: never extracted, so the upload goes through.
    padded = tmp_path / "padded.zip"
    with zipfile.ZipFile(padded, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
        with zf.open("zeros.bin", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(block)
    assert padded.stat().st_size < 2 * 2**20
    response = client.post(
        "/api/layers",
        files={"file": ("padded.zip", padded.read_bytes())},
        data={"kind": "generic", "name": "padded"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["feature_count"] == 1
    # A Shapefile part that inflates past the upload limit is refused while it is written.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            if not name.endswith(".dbf"):
                zf.writestr(name, data)
        with zf.open("omrade.dbf", "w", force_zip64=True) as member:
            member.write(parts["omrade.dbf"])
            for _ in range(40):
                member.write(b" " * (1 << 20))
    small = client.app.state.settings.model_copy(update={"max_upload_mb": 16})  # type: ignore[attr-defined]
    client.app.state.settings = small  # type: ignore[attr-defined]
    refused = client.post(
        "/api/layers",
        files={"file": ("bomb.zip", bomb.read_bytes())},
        data={"kind": "generic", "name": "bomb"},
    )
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"] == "zip_bomb"
    assert client.get("/api/layers").json()["total"] == 1
