"""Our OGC API answers against the official OGC JSON schemas (Part 1 1.0.1, Part 2 1.0.1),
vendored in ``tests/schemas/ogcapi-features`` with their licence: landing page, conformance,
collections, collection, items, item and every error the API gives."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.test_ogc import _publish

SCHEMAS = Path(__file__).parent / "schemas" / "ogcapi-features"
PART1 = "http://schemas.opengis.net/ogcapi/features/part1/1.0/openapi/schemas/"
PART2 = "http://schemas.opengis.net/ogcapi/features/part2/1.0/openapi/schemas/"


@cache
def registry() -> Registry:
    """Every vendored schema under the address the standard publishes it at."""
    resources = []
    for path in SCHEMAS.glob("*.yaml"):
        contents = yaml.safe_load(path.read_text(encoding="utf-8"))
        if path.name.startswith("part2-"):
            uri = PART2 + path.name.removeprefix("part2-")
        else:
            uri = PART1 + path.name
        resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT4)))
    return Registry().with_resources(resources)


def check(document: Any, schema_uri: str) -> None:
    validator = Draft4Validator({"$ref": schema_uri}, registry=registry())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_the_schemas_catch_a_wrong_document() -> None:
    """The check is not vacuous: an exception without ``code`` fails it."""
    with pytest.raises(AssertionError):
        check({"error": "x", "detail": "y"}, PART1 + "exception.yaml")
    with pytest.raises(AssertionError):
        check({"type": "FeatureCollection"}, PART1 + "featureCollectionGeoJSON.yaml")


def test_every_document_matches_the_official_schema(client: TestClient) -> None:
    _publish(client)
    check(client.get("/ogc").json(), PART1 + "landingPage.yaml")
    check(client.get("/ogc/conformance").json(), PART1 + "confClasses.yaml")
    check(client.get("/ogc/collections").json(), PART2 + "collections.yaml")
    check(client.get("/ogc/collections/n50-as").json(), PART2 + "collection.yaml")
    items = client.get("/ogc/collections/n50-as/items", params={"limit": 50})
    check(items.json(), PART1 + "featureCollectionGeoJSON.yaml")
    filtered = client.get(
        "/ogc/collections/n50-as/items",
        params={"filter": "arealtype = 30", "crs": "http://www.opengis.net/def/crs/EPSG/0/25833"},
    )
    check(filtered.json(), PART1 + "featureCollectionGeoJSON.yaml")
    check(client.get("/ogc/collections/n50-as/items/7").json(), PART1 + "featureGeoJSON.yaml")


def test_every_error_matches_the_exception_schema(client: TestClient) -> None:
    _publish(client)
    base = "/ogc/collections/n50-as"
    for url, params, status in (
        (f"{base}/items", {"limit": 0}, 400),
        (f"{base}/items", {"limit": "abc"}, 400),
        (f"{base}/items", {"offset": -1}, 400),
        (f"{base}/items", {"bbox": "10,60,11,59"}, 400),
        (f"{base}/items", {"bbox": "1,2,3"}, 400),
        (f"{base}/items", {"crs": "EPSG:3857"}, 400),
        (f"{base}/items", {"filter": "arealtype ="}, 400),
        (f"{base}/items", {"sortby": "nothing"}, 400),
        (f"{base}/items", {"unknown": "1"}, 400),
        (f"{base}/items/999999", {}, 404),
        (f"{base}/items/abc", {}, 404),
        ("/ogc/collections/nowhere", {}, 404),
        ("/ogc/collections/nowhere/items", {}, 404),
        ("/ogc/collections/nowhere/queryables", {}, 404),
        ("/ogc/tileMatrixSets/UTM99", {}, 404),
        ("/ogc", {"f": "xml"}, 400),
    ):
        answer = client.get(url, params=params)
        assert answer.status_code == status, (url, params, answer.text)
        check(answer.json(), PART1 + "exception.yaml")
