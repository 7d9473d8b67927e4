"""The staging encoders: hex WKB for COPY, and the geometry checks made while staging."""

from __future__ import annotations

import pyarrow as pa
import shapely
from shapely.geometry import Polygon, box

from layers.staging import geometry_checks, hex_wkb
from tests.test_layer_input import circle_wkb

SQUARE = box(0, 0, 10, 10).wkb
BOWTIE = Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)]).wkb
EMPTY = shapely.from_wkt("POLYGON EMPTY").wkb


def test_hex_wkb_matches_python_for_slices_and_nulls() -> None:
    values = [SQUARE, None, BOWTIE, b"", EMPTY]
    array = pa.array(values, pa.binary())
    for part in (array, array.slice(1, 3), array.slice(2)):
        expected = [None if v is None else v.hex() for v in part.to_pylist()]
        assert hex_wkb(part).to_pylist() == expected
    large = pa.array(values, pa.large_binary())
    assert hex_wkb(large).to_pylist() == [None if v is None else v.hex() for v in values]
    assert hex_wkb(pa.array([], pa.binary())).to_pylist() == []


def test_geometry_checks_leave_unreadable_geometries_to_postgis() -> None:
    line = shapely.LineString([(-5, 2), (3, 20)]).wkb
    wkb = pa.array([SQUARE, BOWTIE, EMPTY, None, b"\x01\x03garbage", line], pa.binary())
    valid, empty, seen = geometry_checks(wkb)
    assert valid.to_pylist() == [True, False, True, False, None, True]
    assert empty.to_pylist() == [False, False, True, True, None, False]
    assert (seen.unread, seen.invalid, seen.empty, seen.types) == (1, 1, 2, {1, 3})
    assert seen.bounds == [-5.0, 0.0, 10.0, 20.0]
    # An arc makes GEOS refuse the whole array; the others are still checked one by one.
    with_arc = pa.array([circle_wkb(0, 0, 5), BOWTIE, SQUARE], pa.binary())
    valid, empty, seen = geometry_checks(with_arc)
    assert valid.to_pylist() == [None, False, True]
    assert empty.to_pylist() == [None, False, False]
    # Batches fold into one summary.
    seen.add(geometry_checks(pa.array([line], pa.binary()))[2])
    assert (seen.unread, seen.invalid, seen.types, seen.bounds) == (1, 1, {1, 3}, [-5, 0, 10, 20])
