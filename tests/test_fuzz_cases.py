"""Inputs that once answered 500: each now gets a 4xx that says what is wrong, and the
generated cases keep the class covered (attribute names, layer names, nesting, bounding
boxes, markup in property names, reports of proposals that overlap nature types)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import authorize

X, Y = 262000.0, 6649000.0
SQUARE = [[[X, Y], [X + 100, Y], [X + 100, Y + 100], [X, Y + 100], [X, Y]]]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def collection(properties: dict[str, Any], geometry: dict[str, Any] | None = None) -> bytes:
    feature = {
        "type": "Feature",
        "properties": properties,
        "geometry": geometry or {"type": "Polygon", "coordinates": SQUARE},
    }
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


def send(client: TestClient, content: bytes, name: str = "layer", **form: str) -> Any:
    data = {"kind": "generic", "name": name, "crs": "EPSG:25833", **form}
    return client.post("/api/layers", files={"file": ("data.geojson", content)}, data=data)


@pytest.mark.parametrize("column", ["__geom", "__fid", "wkb_geometry", "OGC_FID", "geom", "fid"])
def test_attribute_names_that_clash_with_internal_columns(client: TestClient, column: str) -> None:
    authorize(client, "gis")
    response = send(client, collection({column: 7, "navn": "a"}))
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        assert column in response.json()["detail"]
    else:
        assert response.json()["feature_count"] == 1


@pytest.mark.parametrize(
    ("name", "code"), [("a\x00b", "bad_layer_name"), ("x" * 300, "bad_layer_name"), (" ", None)]
)
def test_layer_names_nul_and_length(client: TestClient, name: str, code: str | None) -> None:
    authorize(client, "gis")
    response = send(client, collection({"navn": "a"}), name=name)
    assert response.status_code == 422, response.text
    if code:
        assert response.json()["error"] == code


def test_deeply_nested_collection_in_an_upload(client: TestClient) -> None:
    authorize(client, "gis")
    geometry: dict[str, Any] = {"type": "Polygon", "coordinates": SQUARE}
    for _ in range(200):
        geometry = {"type": "GeometryCollection", "geometries": [geometry]}
    response = send(client, collection({"navn": "a"}, geometry))
    assert response.status_code == 422, response.text
    assert client.get("/api/layers").json()["total"] == 0


@pytest.mark.parametrize(
    "bbox", ["nan,nan,nan,nan", "inf,0,1,1", "0,0,nan,1", "-inf,-inf,inf,inf", "1e400,0,1,1"]
)
def test_bounding_boxes_that_are_not_numbers(client: TestClient, bbox: str) -> None:
    authorize(client, "gis")
    layer = send(client, collection({"navn": "a"})).json()["layer_id"]
    response = client.get(f"/ogc/collections/{layer}/items", params={"bbox": bbox})
    assert response.status_code == 400, response.text
    assert "bbox" in response.json()["detail"]


def test_markup_in_property_names_is_shown_as_text(client: TestClient) -> None:
    authorize(client, "gis")
    layer = send(client, collection({"<b>navn</b>": "<script>alert(1)</script>"})).json()
    page = client.get(f"/maps/layers/{layer['layer_id']}")
    assert page.status_code == 200, page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "<b>navn</b>" not in page.text


@FUZZ
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=40), st.one_of(st.integers(), st.text(max_size=20)), max_size=4
    )
)
def test_any_property_names_upload_and_draw(client: TestClient, props: dict[str, Any]) -> None:
    authorize(client, "gis")
    response = send(client, collection(props), name="fuzz")
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        page = client.get(f"/maps/layers/{response.json()['layer_id']}")
        assert page.status_code == 200, page.text


@FUZZ
@given(st.text(min_size=0, max_size=400))
def test_any_layer_name(client: TestClient, name: str) -> None:
    authorize(client, "gis")
    response = send(client, collection({"navn": "a"}), name=name)
    assert response.status_code in (201, 422), response.text
