"""How complex a geometry sent in a request may be, checked before any work is done.

GEOS does not look for interrupts while it repairs a polygon, and repairing one that crosses
itself costs the square of its vertex count (a 10 000-vertex zigzag: seconds; 200 000: hours,
deaf to ``statement_timeout`` and ``pg_cancel_backend``). So request geometries are bounded
in vertices, parts and nesting, and one that needs repair is bounded much lower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInput

FIX_HINT = (
    "Simplify it in your GIS (QGIS: Vector > Geometry Tools > Simplify), or split it into "
    "several requests."
)
REPAIR_HINT = (
    "Repair it in your GIS first (QGIS: Vector > Geometry Tools > Fix Geometries; "
    "PostGIS: ST_MakeValid), then send it again."
)


@dataclass(frozen=True)
class GeometryLimits:
    """The bounds (``GEOSERVICE_MAX_REQUEST_*`` settings)."""

    vertices: int = 100_000
    parts: int = 5_000
    depth: int = 3
    repair_vertices: int = 5_000


@dataclass(frozen=True)
class Complexity:
    """What a GeoJSON object holds."""

    vertices: int
    parts: int
    depth: int


def measure(geojson: Any) -> Complexity:
    """Count vertices, polygon/line/point parts and collection nesting without recursion
    (a collection nested thousands deep must not exhaust the stack)."""
    vertices = parts = depth = 0
    stack: list[tuple[Any, int]] = [(geojson, 0)]
    while stack:
        obj, level = stack.pop()
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type")
        if kind == "FeatureCollection":
            stack.extend((f, level) for f in obj.get("features") or [] if isinstance(f, dict))
        elif kind == "Feature":
            stack.append((obj.get("geometry"), level))
        elif kind == "GeometryCollection":
            depth = max(depth, level + 1)
            stack.extend((g, level + 1) for g in obj.get("geometries") or [])
        else:
            coords = obj.get("coordinates")
            if kind in ("Point", "LineString", "Polygon"):
                parts += 1
            elif isinstance(coords, list):
                parts += len(coords)
            pending: list[Any] = [coords]
            while pending:  # positions are the innermost lists
                item = pending.pop()
                if isinstance(item, list) and item and isinstance(item[0], list):
                    pending.extend(item)
                elif isinstance(item, list):
                    vertices += 1
    return Complexity(vertices=vertices, parts=parts, depth=depth)


def check_request_geometry(geojson: Any, limits: GeometryLimits, label: str) -> None:
    """Refuse (422) a geometry beyond the limits, naming the limit and how to get under it."""
    found = measure(geojson)
    if found.depth > limits.depth:
        raise InvalidInput(
            f"The {label} geometry nests collections {found.depth} deep; at most "
            f"{limits.depth} levels are accepted. Send the polygons as one MultiPolygon or a "
            "FeatureCollection.",
            code="geometry_too_deep",
        )
    if found.vertices > limits.vertices:
        raise InvalidInput(
            f"The {label} geometry has {found.vertices:,} vertices; at most "
            f"{limits.vertices:,} are accepted (GEOSERVICE_MAX_REQUEST_VERTICES). " + FIX_HINT,
            code="geometry_too_complex",
        )
    if found.parts > limits.parts:
        raise InvalidInput(
            f"The {label} geometry has {found.parts:,} parts (polygons or lines); at most "
            f"{limits.parts:,} are accepted (GEOSERVICE_MAX_REQUEST_PARTS). " + FIX_HINT,
            code="geometry_too_complex",
        )
    if found.vertices > limits.repair_vertices and not _valid(geojson):
        raise InvalidInput(
            f"The {label} geometry crosses itself (or is otherwise invalid) and has "
            f"{found.vertices:,} vertices; repairing it here is allowed up to "
            f"{limits.repair_vertices:,} (GEOSERVICE_MAX_REPAIR_VERTICES). " + REPAIR_HINT,
            code="geometry_needs_repair",
        )


def _valid(geojson: Any) -> bool:
    """GEOS validity of every polygon in the object (fast: no repair is attempted)."""
    import shapely
    from shapely.geometry import shape

    geometries: list[Any] = []
    stack: list[Any] = [geojson]
    while stack:
        obj = stack.pop()
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type")
        if kind == "FeatureCollection":
            stack.extend(obj.get("features") or [])
        elif kind == "Feature":
            stack.append(obj.get("geometry"))
        elif kind == "GeometryCollection":
            stack.extend(obj.get("geometries") or [])
        elif kind in ("Polygon", "MultiPolygon"):
            try:
                geometries.append(shape(obj))
            except (ValueError, TypeError, AttributeError, IndexError, KeyError):
                return False  # malformed: the database will refuse it with its own message
    return bool(shapely.is_valid(geometries).all()) if geometries else True
