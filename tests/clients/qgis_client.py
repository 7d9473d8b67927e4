"""QGIS as a client of the service, run by Debian's python3 with python3-qgis, headless.

Usage: python3 qgis_client.py BASE_URL TOKEN COLLECTION LAYER_ID
Prints one JSON line: what QGIS loaded through access_token and through HTTP Basic, what a
subset string (on the client) and a queryable in the service URL (on the server) gave, and
how many pixels the vector tiles painted.
"""

from __future__ import annotations

import json
import sys

from qgis.core import (
    QgsApplication,
    QgsAuthMethodConfig,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProject,
    QgsVectorLayer,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor


def count(layer: QgsVectorLayer) -> int:
    return sum(1 for _ in layer.getFeatures())


def main(base: str, token: str, collection: str, layer_id: str) -> dict[str, object]:
    out: dict[str, object] = {}
    by_token = QgsVectorLayer(
        f"url='{base}/ogc?access_token={token}' typename='{collection}'", "token", "OAPIF"
    )
    out["token_valid"] = by_token.isValid()
    out["token_count"] = count(by_token) if by_token.isValid() else 0

    auth = QgsApplication.authManager()
    auth.setMasterPassword("geoservice-test", True)
    config = QgsAuthMethodConfig("Basic")
    config.setName("geoservice")
    config.setConfig("username", "qgis")
    config.setConfig("password", token)
    auth.storeAuthenticationConfig(config)
    by_basic = QgsVectorLayer(
        f"url='{base}/ogc' typename='{collection}' authcfg='{config.id()}'", "basic", "OAPIF"
    )
    out["basic_valid"] = by_basic.isValid()
    out["basic_count"] = count(by_basic) if by_basic.isValid() else 0
    by_basic.setSubsetString('"arealtype" = 30')
    out["filtered_count"] = count(by_basic) if by_basic.isValid() else 0

    # QGIS 3.22 passes the query of the service URL on to every request: a queryable given
    # there is a filter the server applies.
    on_server = QgsVectorLayer(
        f"url='{base}/ogc?access_token={token}&arealtype=30' typename='{collection}'",
        "server-filtered",
        "OAPIF",
    )
    out["server_filtered_count"] = count(on_server) if on_server.isValid() else 0

    tiles = QgsVectorTileLayer(
        f"type=xyz&url={base}/tiles/{layer_id}/{{z}}/{{x}}/{{y}}.pbf?access_token={token}"
        "&zmin=0&zmax=14",
        "tiles",
    )
    out["tiles_valid"] = tiles.isValid()
    mercator = QgsCoordinateReferenceSystem("EPSG:3857")
    extent = QgsCoordinateTransform(
        by_token.crs(), mercator, QgsProject.instance()
    ).transformBoundingBox(by_token.extent())
    settings = QgsMapSettings()
    settings.setLayers([tiles])
    settings.setDestinationCrs(mercator)
    settings.setExtent(extent)
    settings.setOutputSize(QSize(256, 256))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    white = QColor(255, 255, 255).rgb()
    out["painted_pixels"] = sum(
        1 for x in range(image.width()) for y in range(image.height()) if image.pixel(x, y) != white
    )
    return out


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    try:
        print(json.dumps(main(*sys.argv[1:5])))
    finally:
        app.exitQgis()
