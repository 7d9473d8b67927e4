"""Generated geometries (degenerate rings, huge coordinates, NaN, mixed types) into upload
and assessment: the service answers 201 with clean data or a 4xx naming the problem, never
a 5xx, and a refused upload leaves the layer as it was.
"""

from __future__ import annotations

import json
import math
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from tests.test_carbon import X0, Y0, landscape  # noqa: F401  (fixture)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Ordinates: near the test landscape (EPSG:25833), anywhere, enormous, or not numbers at all.
near = st.floats(min_value=-300, max_value=800, allow_nan=False)
ordinate = st.one_of(
    near,
    st.sampled_from([0.0, -0.0, 1e-300, 1e15, -1e15, 1e308, -1e308]),
    st.just(math.nan),
    st.sampled_from([math.inf, -math.inf]),
    st.floats(),
)


@st.composite
def positions(draw: st.DrawFn) -> list[Any]:
    size = draw(st.sampled_from([2, 2, 2, 3, 1, 4]))
    values = [draw(ordinate) for _ in range(size)]
    if size >= 2 and draw(st.booleans()):
        values[0] += X0  # most positions land on the landscape
        values[1] += Y0
    return values


@st.composite
def rings(draw: st.DrawFn) -> list[Any]:
    points = draw(st.lists(positions(), min_size=0, max_size=7))
    if points and draw(st.booleans()):
        points.append(list(points[0]))  # closed, as it should be ...
    if points and draw(st.booleans()):
        points = points[:1] * draw(st.integers(1, 5))  # ... or all one point
    return points


def polygon(r: Any) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": r}


@st.composite
def plausible(draw: st.DrawFn) -> dict[str, Any]:
    """A closed ring on the landscape: often a bow-tie, a sliver or with repeated points."""
    xs = st.floats(X0 - 50, X0 + 600, allow_nan=False)
    ys = st.floats(Y0 - 50, Y0 + 1200, allow_nan=False)
    points = draw(st.lists(st.tuples(xs, ys), min_size=3, max_size=6))
    ring = [list(p) for p in points] + [list(points[0])]
    return polygon([ring])


simple = st.one_of(
    plausible(),
    plausible(),
    st.builds(polygon, st.lists(rings(), min_size=0, max_size=3)),
    st.builds(
        lambda p: {"type": "MultiPolygon", "coordinates": p},
        st.lists(st.lists(rings(), min_size=1, max_size=2), min_size=0, max_size=3),
    ),
    st.builds(lambda p: {"type": "Point", "coordinates": p}, positions()),
    st.builds(lambda r: {"type": "LineString", "coordinates": r}, rings()),
    st.sampled_from(
        [
            {"type": "Polygon"},
            {"type": "Polygon", "coordinates": "abc"},
            {"type": "Polygon", "coordinates": [[["a", "b"], [1, 2], [3, 4], ["a", "b"]]]},
            {"type": "Circle", "coordinates": [0, 0]},
            {"coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        ]
    ),
)
geometries = st.one_of(
    simple,
    st.builds(
        lambda gs: {"type": "GeometryCollection", "geometries": gs}, st.lists(simple, max_size=3)
    ),
)


def feature_collection(geoms: list[dict[str, Any]]) -> bytes:
    features = [
        {"type": "Feature", "properties": {"nr": i}, "geometry": g} for i, g in enumerate(geoms)
    ]
    # json.dumps writes NaN / Infinity tokens, as careless software does.
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def versions(database_url: str) -> list[tuple[int, int]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT v.id, v.feature_count FROM geoservice.layer_version v "
            "JOIN geoservice.layer l ON l.id = v.layer_id WHERE l.name = 'fuzz' ORDER BY v.id"
        ).fetchall()


@SETTINGS
@given(geoms=st.lists(geometries, min_size=1, max_size=4))
def test_generated_geometries_upload(
    client: TestClient, database_url: str, geoms: list[dict[str, Any]]
) -> None:
    before = versions(database_url)
    content = feature_collection(geoms)
    note(content.decode())
    response = client.post(
        "/api/layers",
        files={"file": ("fuzz.geojson", content)},
        data={"kind": "generic", "name": "fuzz", "crs": "EPSG:25833"},
    )
    assert response.status_code < 500, response.text
    event(f"upload {response.status_code} {response.json().get('error', '')}")
    after = versions(database_url)
    if response.status_code != 201:
        assert response.status_code in (413, 422), response.text
        assert response.json()["detail"], "a refusal says why"
        assert after == before, "a refused upload leaves no version behind"
        return
    result = response.json()
    assert after == [*before, (result["version_id"], result["feature_count"])]
    with psycopg.connect(database_url) as conn:
        bad = conn.execute(
            "SELECT count(*) FROM geoservice.feature WHERE version_id = %s AND "
            "(NOT ST_IsValid(geom) OR ST_IsEmpty(geom))",
            (result["version_id"],),
        ).fetchone()
    assert bad == (0,), "stored geometries are valid and non-empty"


@pytest.mark.usefixtures("landscape")
@SETTINGS
@given(geom=geometries, wrap=st.sampled_from(["geometry", "feature", "collection"]))
def test_generated_footprints_assessment(
    client: TestClient, geom: dict[str, Any], wrap: str
) -> None:
    footprint: dict[str, Any] = geom
    if wrap != "geometry":
        footprint = {"type": "Feature", "properties": {}, "geometry": geom}
    if wrap == "collection":
        footprint = {"type": "FeatureCollection", "features": [footprint]}
    body = json.dumps({"footprint": footprint, "crs": "EPSG:25833", "arealformal": 1110})
    note(body)
    response = client.post(
        "/api/proposals", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    event(f"assessment {response.status_code} {response.json().get('error', '')}")
    if response.status_code != 201:
        assert response.status_code == 422, response.text
        assert response.json()["detail"]
        return
    for fp in response.json()["footprints"]:
        assert math.isfinite(fp["area_m2"]) and fp["area_m2"] > 0
        assert all(math.isfinite(v) and v >= 0 for v in fp["emission_t_co2e"].values())
