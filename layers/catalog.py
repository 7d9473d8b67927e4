"""Reading the layer catalogue: layers, versions and their provenance; switching versions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import Conflict, InvalidInput, NotFound
from core.versions import next_version
from layers.attributes import stored_attributes
from layers.kinds import LayerKind

_VERSION_COLUMNS = """
    v.id AS version_id, v.version, v.created_at, v.uploader, v.source_filename,
    v.source_format, v.source_layer, v.source_sha256, v.source_crs, v.storage_srid, v.licence,
    v.source_feature_count, v.feature_count, v.geometry_type,
    CASE WHEN v.bbox IS NULL THEN NULL ELSE
      json_build_array(ST_XMin(v.bbox), ST_YMin(v.bbox), ST_XMax(v.bbox), ST_YMax(v.bbox)) END
      AS bbox,
    v.field_map, v.property_names, v.repairs, v.unknown_codes, v.extent_checked, v.raster,
    (l.active_version_id = v.id) AS active
"""


def _version_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["created_at"] = data["created_at"].isoformat()
    data["storage_crs"] = f"EPSG:{data.pop('storage_srid')}"
    return data


def list_layers(engine: Engine, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of layers (newest first) with their active version, and the total count."""
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM geoservice.layer")).scalar_one()
        rows = conn.execute(
            text(
                f"""
                SELECT l.id, l.name, l.kind, l.created_at, {_VERSION_COLUMNS}
                  FROM geoservice.layer l
                  LEFT JOIN geoservice.layer_version v ON v.id = l.active_version_id
                 ORDER BY l.id DESC
                 LIMIT :limit OFFSET :offset
                """
            ),
            {"limit": limit, "offset": offset},
        ).all()
    return [_layer_dict(row) for row in rows], int(total)


def _layer_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    layer = {
        "id": data.pop("id"),
        "name": data.pop("name"),
        "kind": data.pop("kind"),
        "created_at": data.pop("created_at").isoformat(),
    }
    layer["active_version"] = _version_dict(row) if data.get("version_id") else None
    return layer


def get_layer(engine: Engine, layer_id: int) -> dict[str, Any]:
    """A layer with its active version's provenance, or NotFound."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                f"""
                SELECT l.id, l.name, l.kind, l.created_at, {_VERSION_COLUMNS}
                  FROM geoservice.layer l
                  LEFT JOIN geoservice.layer_version v ON v.id = l.active_version_id
                 WHERE l.id = :id
                """
            ),
            {"id": layer_id},
        ).first()
    if row is None:
        raise NotFound(f"There is no layer with id {layer_id}.", code="layer_not_found")
    return _layer_dict(row)


def list_versions(engine: Engine, layer_id: int) -> list[dict[str, Any]]:
    """Every version of a layer, newest first."""
    get_layer(engine, layer_id)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"""
                SELECT {_VERSION_COLUMNS}
                  FROM geoservice.layer_version v JOIN geoservice.layer l ON l.id = v.layer_id
                 WHERE v.layer_id = :id ORDER BY v.version DESC
                """
            ),
            {"id": layer_id},
        ).all()
    return [_version_dict(r) for r in rows]


def raster_path(conn: Connection, version_id: int) -> str | None:
    """Where a raster version's COG is stored (None for vector versions)."""
    path = conn.execute(
        text("SELECT storage_path FROM geoservice.layer_version WHERE id = :v"),
        {"v": version_id},
    ).scalar()
    return str(path) if path else None


def version_id_of(conn: Connection, layer_id: int, version: int | None) -> int:
    """Database id of a layer version (the active one when ``version`` is None)."""
    if version is None:
        row = conn.execute(
            text("SELECT active_version_id FROM geoservice.layer WHERE id = :id"),
            {"id": layer_id},
        ).first()
        if row is None:
            raise NotFound(f"There is no layer with id {layer_id}.", code="layer_not_found")
        if row[0] is None:
            raise NotFound(f"Layer {layer_id} has no published version.", code="no_version")
        return int(row[0])
    found = conn.execute(
        text("SELECT id FROM geoservice.layer_version WHERE layer_id = :id AND version = :v"),
        {"id": layer_id, "v": version},
    ).scalar()
    if found is None:
        raise NotFound(f"Layer {layer_id} has no version {version}.", code="version_not_found")
    return int(found)


def activate_version(engine: Engine, layer_id: int, version: int) -> dict[str, Any]:
    """Make an earlier (or later) version the active one again."""
    with engine.begin() as conn:
        version_id = version_id_of(conn, layer_id, version)
        conn.execute(
            text("UPDATE geoservice.layer SET active_version_id = :v WHERE id = :id"),
            {"v": version_id, "id": layer_id},
        )
    return get_layer(engine, layer_id)


SLUG_LETTERS = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "Æ": "ae", "Ø": "o", "Å": "a"})


def slug(name: str) -> str:
    """A readable, URL- and table-safe id from a layer name: "N50 arealdekke Ås" becomes
    "n50-arealdekke-as" (what GDAL names the tables it exports)."""
    ascii_name = unicodedata.normalize("NFKD", name.translate(SLUG_LETTERS))
    plain = "".join(c for c in ascii_name if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:60] or "layer"


def _with_slugs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each layer its slug; a slug taken by an older layer gets the id appended."""
    taken: set[str] = set()
    for row in sorted(rows, key=lambda r: r["id"]):
        candidate = slug(row["name"])
        if candidate in taken or candidate.isdigit():
            candidate = f"{candidate}-{row['id']}"
        taken.add(candidate)
        row["slug"] = candidate
    return rows


_PUBLISHED = """
    SELECT l.id, l.name, l.kind, v.id AS version_id, v.version, v.feature_count,
           v.geometry_type, v.property_names, v.licence, v.storage_srid,
           json_build_array(ST_XMin(v.bbox), ST_YMin(v.bbox),
                            ST_XMax(v.bbox), ST_YMax(v.bbox)) AS bbox,
           (SELECT json_build_array(ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b))
              FROM ST_Transform(ST_Segmentize(v.bbox, 1000), 4326) AS b) AS bbox_crs84
      FROM geoservice.layer l
      JOIN geoservice.layer_version v ON v.id = l.active_version_id
     WHERE v.storage_path IS NULL  -- rasters are not feature collections
       AND (CAST(:id AS integer) IS NULL OR l.id = :id)
     ORDER BY l.id
"""


_PUBLISHED_NAMES = text(
    "SELECT l.id, l.name FROM geoservice.layer l JOIN geoservice.layer_version v "
    "ON v.id = l.active_version_id WHERE v.storage_path IS NULL ORDER BY l.id"
)


def _collection_id(
    names: list[Any], collection: int | str | None
) -> tuple[dict[int, str], int | None]:
    """Slugs of the published layers, and the layer id a collection id names (None: all)."""
    slugs = {r["id"]: r["slug"] for r in _with_slugs([dict(r._mapping) for r in names])}
    if collection is None:
        return slugs, None
    wanted = str(collection)
    layer_id = next(
        (i for i, s in slugs.items() if s == wanted or (wanted.isdigit() and i == int(wanted))),
        None,
    )
    if layer_id is None:
        raise NotFound(
            f"There is no collection {wanted!r}: no published layer has that id or name. "
            "The list is at /ogc/collections.",
            code="collection_not_found",
        )
    return slugs, layer_id


async def published_layers(
    engine: AsyncEngine, collection: int | str | None = None
) -> list[dict[str, Any]]:
    """Layers with an active version, as OGC collections need them (bbox also in CRS84, a
    slug as the collection id). ``collection`` picks one by slug or by layer id."""
    async with engine.connect() as conn:
        names = list((await conn.execute(_PUBLISHED_NAMES)).all())
        slugs, layer_id = _collection_id(names, collection)
        rows = (await conn.execute(text(_PUBLISHED), {"id": layer_id})).all()
    return [{**dict(r._mapping), "slug": slugs[r.id]} for r in rows]


async def collection_layer_id(engine: AsyncEngine, collection: int | str) -> int:
    """The layer a collection id (slug or number) names, with one light query: the tile
    path needs no extent or property list."""
    async with engine.connect() as conn:
        names = list((await conn.execute(_PUBLISHED_NAMES)).all())
    _, layer_id = _collection_id(names, collection)
    assert layer_id is not None  # a collection was asked for, so NotFound or an id
    return layer_id


@dataclass(frozen=True)
class TileSource:
    """What a tile request needs to know of the layer version it draws."""

    version_id: int
    kind: str
    smallest_feature_m: float | None
    attributes: frozenset[str]  # what its features carry (tiles label only these codes)


async def tile_source(engine: AsyncEngine, layer_id: int, version: int | None) -> TileSource:
    """The given or active version of a layer, for its tiles; 404 as :func:`version_id_of`
    says it."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT l.kind, v.id, v.smallest_feature_m, v.field_map "
                    "FROM geoservice.layer l LEFT JOIN geoservice.layer_version v "
                    "ON v.layer_id = l.id AND (CASE WHEN CAST(:version AS int) IS NULL "
                    "THEN v.id = l.active_version_id ELSE v.version = :version END) "
                    "WHERE l.id = :id"
                ),
                {"id": layer_id, "version": version},
            )
        ).first()
    if row is None:
        raise NotFound(f"There is no layer with id {layer_id}.", code="layer_not_found")
    if row.id is None:
        if version is None:
            raise NotFound(f"Layer {layer_id} has no published version.", code="no_version")
        raise NotFound(f"Layer {layer_id} has no version {version}.", code="version_not_found")
    mapped = set(row.field_map or {})
    return TileSource(
        int(row.id),
        str(row.kind),
        row.smallest_feature_m,
        stored_attributes(str(row.kind), mapped),
    )


MAX_NAME_LENGTH = 200


def check_layer_name(name: str) -> str:
    """The layer name, trimmed; refused (422) when empty, too long or holding control
    characters, before any work is done."""
    name = name.strip()
    if not name:
        raise InvalidInput("A layer needs a name.", code="missing_name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"The layer name is {len(name)} characters long; at most {MAX_NAME_LENGTH} are "
            "accepted. Choose a shorter name.",
            code="bad_layer_name",
        )
    if not name.isprintable():
        raise InvalidInput(
            "The layer name holds control characters (such as a NUL byte or a line break); "
            "use letters, digits, spaces and punctuation only.",
            code="bad_layer_name",
        )
    return name


def lock_layer(cur: Any, kind: LayerKind, name: str) -> tuple[int, int]:
    """Create (or lock) the layer ``name`` and return its id and next version number.

    The row lock serialises concurrent uploads to one layer: each gets its own version.
    """
    name = check_layer_name(name)
    cur.execute(
        "INSERT INTO geoservice.layer (name, kind) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
        (name, kind.name),
    )
    row = cur.execute(
        "SELECT id, kind FROM geoservice.layer WHERE name = %s FOR UPDATE", (name,)
    ).fetchone()
    assert row is not None
    layer_id, existing_kind = row
    if existing_kind != kind.name:
        raise Conflict(
            f"Layer {name!r} holds {existing_kind} data; a {kind.name} file cannot become a "
            "new version of it. Choose another name or the matching kind.",
            code="kind_mismatch",
        )
    return int(layer_id), next_version(cur.connection, "layer", int(layer_id))


def active_versions(conn: Connection, kind: str) -> list[Any]:
    """(layer_id, name, version_id, version) of every layer of ``kind`` with an active version.

    Feature queries filter on these ids as values, so PostgreSQL prunes the other versions'
    partitions before it plans the spatial search.
    """
    return list(
        conn.execute(
            text(
                "SELECT l.id AS layer_id, l.name, v.id AS version_id, v.version "
                "FROM geoservice.layer l JOIN geoservice.layer_version v "
                "ON v.id = l.active_version_id WHERE l.kind = :kind ORDER BY l.id"
            ),
            {"kind": kind},
        ).all()
    )


def active_by_kind(conn: Connection) -> dict[str, list[Any]]:
    """:func:`active_versions` of every kind at once (one query for an analysis that needs
    several kinds)."""
    rows = conn.execute(
        text(
            "SELECT l.kind, l.id AS layer_id, l.name, v.id AS version_id, v.version "
            "FROM geoservice.layer l JOIN geoservice.layer_version v "
            "ON v.id = l.active_version_id ORDER BY l.id"
        )
    ).all()
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r.kind, []).append(r)
    return out


def layer_with_active_version(conn: Connection, layer_id: int) -> Any | None:
    """(id, name, kind, version_id, version) of a layer; version_id is None when no version
    is active; None when there is no such layer."""
    return conn.execute(
        text(
            "SELECT l.id, l.name, l.kind, v.id AS version_id, v.version FROM geoservice.layer l "
            "LEFT JOIN geoservice.layer_version v ON v.id = l.active_version_id WHERE l.id = :id"
        ),
        {"id": layer_id},
    ).first()


def versions_overlap_free(conn: Connection, version_ids: list[int]) -> bool:
    """True when every version was checked at upload and found free of self-overlaps."""
    found = conn.execute(
        text(
            "SELECT bool_or(self_overlaps IS NOT FALSE) FROM geoservice.layer_version "
            "WHERE id = ANY(:v)"
        ),
        {"v": version_ids},
    ).scalar()
    return not found


def covering_versions(
    conn: Connection, kind: str, sites: dict[int, bytes], srid: int
) -> dict[int, Any]:
    """The active version of ``kind`` that covers each site: the one rule every analysis uses.

    Of the active versions whose extent touches a site, the one whose features cover most of
    it (for a raster, whose extent covers most of it); on a tie, the newest version. When only
    one extent touches a site, that version is the answer without measuring. Sites are keyed
    by any whole number; the answer holds rows (key, layer_id, name, version_id, version,
    storage_path, raster) for the sites something touches. One query for any number of sites.
    """
    if not sites:
        return {}
    rows = conn.execute(
        text(
            """
            WITH s AS MATERIALIZED (
                SELECT k, ST_GeomFromWKB(w, :srid) AS g
                  FROM unnest(CAST(:keys AS bigint[]), CAST(:wkbs AS bytea[])) AS t(k, w)),
                 c AS (
                SELECT s.k, s.g, l.id AS layer_id, l.name, v.id AS version_id, v.version,
                       v.storage_path, v.raster, v.bbox,
                       count(*) OVER (PARTITION BY s.k) AS n
                  FROM s
                  JOIN geoservice.layer l ON l.kind = :kind
                  JOIN geoservice.layer_version v
                    ON v.id = l.active_version_id AND v.bbox && s.g)
            SELECT DISTINCT ON (c.k) c.k AS key, c.layer_id, c.name, c.version_id, c.version,
                   c.storage_path, c.raster
              FROM c
             ORDER BY c.k,
                      CASE WHEN c.n = 1 THEN 0
                           WHEN c.storage_path IS NOT NULL
                           THEN ST_Area(ST_Intersection(c.bbox, c.g))
                           ELSE (SELECT coalesce(sum(ST_Area(ST_Intersection(f.geom, c.g))), 0)
                                   FROM geoservice.feature f
                                  WHERE f.version_id = c.version_id
                                    AND ST_Intersects(f.geom, c.g))
                      END DESC,
                      c.version_id DESC
            """
        ),
        {"kind": kind, "srid": srid, "keys": list(sites), "wkbs": list(sites.values())},
    ).all()
    return {int(r.key): r for r in rows}


def covering_version(conn: Connection, kind: str, wkb: bytes, srid: int) -> Any | None:
    """:func:`covering_versions` for one geometry (None when nothing touches it)."""
    return covering_versions(conn, kind, {0: wkb}, srid).get(0)


def version_for_map(engine: Engine, layer_id: int, version: int | None) -> dict[str, Any]:
    """A layer version with what a map needs: kind, counts, fields and lon/lat bounds."""
    with engine.connect() as conn:
        version_id = version_id_of(conn, layer_id, version)
        row = conn.execute(
            text(
                f"""
                SELECT l.id AS layer_id, l.name, l.kind, {_VERSION_COLUMNS},
                       (SELECT json_build_array(ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b))
                          FROM (SELECT ST_Transform(ST_Segmentize(v.bbox, 1000), 4326)::box2d
                                       AS b) t) AS bounds_wgs84
                  FROM geoservice.layer_version v JOIN geoservice.layer l ON l.id = v.layer_id
                 WHERE v.id = :v
                """
            ),
            {"v": version_id},
        ).one()
    data = _version_dict(row)
    data.update(layer_id=row.layer_id, name=row.name, kind=row.kind)
    return data
