"""Restoration registry and progress against Target 2 (30 % by 2030) and the national 15 %.

Every change to a project is a new history row (who, when, what), so the registry can be read
as it stood at any time. Progress counts the union of project areas whose status counts on the
as-of date (initiated, ongoing, completed, monitoring), intersected with the degraded baseline,
so overlapping projects count once and restoration outside the baseline is reported apart.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Connection, Engine, text

from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.versions import next_version
from layers import codelists
from layers.catalog import active_versions
from layers.crs import epsg_of, parse_crs

TARGETS_CSV = files("analyses") / "targets.csv"
FIELDS = (
    "name",
    "ecosystem_type",
    "degradation_driver",
    "restoration_type",
    "methods",
    "quantities",
    "status_history",
    "responsible_org",
    "funding",
    "monitoring_notes",
    "external_ids",
    "counts_toward",
    "example",
    "rewetting",
)


@cache
def targets() -> list[dict[str, Any]]:
    """Targets as data: share of the degraded baseline and the year, with the source."""
    with TARGETS_CSV.open(encoding="utf-8") as fh:
        return [
            {**r, "share": float(r["share"]), "year": int(r["year"])} for r in csv.DictReader(fh)
        ]


def _check(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a project's attributes; return them normalised."""
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="bad_project")
    if not str(data.get("name") or "").strip():
        raise InvalidInput("A restoration project needs a name.", code="bad_project")
    eco = codelists.load("ecosystem_type")
    if eco.normalise(data.get("ecosystem_type")) not in eco.rows:
        raise InvalidInput(
            f"ecosystem_type {data.get('ecosystem_type')!r} is not one of: "
            f"{', '.join(map(str, eco.codes))}.",
            code="unknown_ecosystem_type",
        )
    statuses = codelists.load("restoration_status")
    history = data.get("status_history") or []
    if not isinstance(history, list) or not history:
        raise InvalidInput(
            'status_history lists the statuses with their dates, e.g. [{"status": "planned", '
            '"date": "2025-03-01"}, {"status": "initiated", "date": "2025-06-15"}].',
            code="bad_status_history",
        )
    parsed = []
    for item in history:
        status = str((item or {}).get("status", "")).strip().lower()
        if status not in statuses.rows:
            raise InvalidInput(
                f"Status {status!r} is not one of: {', '.join(map(str, statuses.codes))}.",
                code="unknown_status",
            )
        try:
            when = date.fromisoformat(str(item.get("date")))
        except ValueError as exc:
            raise InvalidInput(
                f"Status {status!r} needs a date as YYYY-MM-DD (got {item.get('date')!r}).",
                code="bad_status_history",
            ) from exc
        parsed.append({"status": status, "date": when.isoformat()})
    if data.get("rewetting") is not None:
        rewetting_effect(data["rewetting"], 0.0)  # refuses unknown land uses now
    dates = [p["date"] for p in parsed]
    if dates != sorted(dates):
        raise InvalidInput(
            f"The status dates are out of order ({', '.join(dates)}); list them oldest first.",
            code="status_dates_out_of_order",
        )
    return {
        **data,
        "ecosystem_type": eco.normalise(data["ecosystem_type"]),
        "status_history": parsed,
    }


def _geometry(conn: Connection, geojson: dict[str, Any], crs: str, srid: int) -> tuple[bytes, bool]:
    """Polygonal geometry in the storage CRS, repaired; refused outside Norway."""
    from analyses.assessment import footprint_geometries, prepare_footprint

    srid_in = epsg_of(parse_crs(crs), crs)
    prepared = prepare_footprint(
        conn, footprint_geometries(geojson, "project"), srid_in, srid, "project"
    )
    return prepared["wkb"], prepared["repaired"]


def _save(
    conn: Connection,
    clean: dict[str, Any],
    wkb: bytes,
    *,
    srid: int,
    user: str | None,
    project_id: int | None,
    may_change_any: bool = True,
) -> int:
    """Write one version of a project inside the caller's transaction; return its id."""
    if project_id is None:
        project_id = int(
            conn.execute(
                text("INSERT INTO geoservice.restoration_project DEFAULT VALUES RETURNING id")
            ).scalar_one()
        )
        change = "create"
    else:
        _lock(conn, project_id)
        if _current(conn, project_id) is None:
            raise NotFound(
                f"There is no restoration project {project_id}.", code="project_not_found"
            )
        _check_may_change(conn, project_id, user, may_change_any)
        change = "update"
    version = _lock(conn, project_id)
    conn.execute(
        text(
            "INSERT INTO geoservice.restoration_project_history (project_id, version, "
            "recorded_by, change, ecosystem_type, data, geom) VALUES (:p, :v, :u, :c, :e, "
            "CAST(:d AS jsonb), ST_GeomFromWKB(:g, :srid))"
        ),
        {
            "p": project_id,
            "v": version,
            "u": user,
            "c": change,
            "e": clean["ecosystem_type"],
            "d": json.dumps(clean),
            "g": wkb,
            "srid": srid,
        },
    )
    return project_id


def save_project(
    engine: Engine,
    data: dict[str, Any],
    geometry: dict[str, Any],
    *,
    crs: str,
    srid: int,
    user: str | None,
    project_id: int | None = None,
    may_change_any: bool = True,
) -> dict[str, Any]:
    """Create a project, or record a new version of one; the old versions stay.

    A project is changed by the user who registered it, or by anyone with
    ``may_change_any`` (administrators, the command line).
    """
    clean = _check(data)
    with engine.begin() as conn:
        wkb, repaired = _geometry(conn, geometry, crs, srid)
        project_id = _save(
            conn,
            clean,
            wkb,
            srid=srid,
            user=user,
            project_id=project_id,
            may_change_any=may_change_any,
        )
        project = _current(conn, project_id)
    assert project is not None
    return {**project, "geometry_repaired": repaired}


def project_properties(props: dict[str, Any]) -> dict[str, Any]:
    """File attributes -> project fields: Norwegian names and a single status with its date
    are understood; a ``status_history`` column may hold the full JSON list."""
    aliases = {
        "navn": "name",
        "okosystem": "ecosystem_type",
        "økosystem": "ecosystem_type",
        "ansvarlig": "responsible_org",
        "tiltak": "restoration_type",
    }
    out: dict[str, Any] = {}
    for key, value in props.items():
        if value is None:
            continue
        name = aliases.get(key.lower(), key.lower())
        if name == "status_history" and isinstance(value, str):
            value = json.loads(value)
        if name in FIELDS:
            out[name] = value
    if "status_history" not in out and props.get("status"):
        out["status_history"] = [
            {"status": props["status"], "date": props.get("status_date") or props.get("dato")}
        ]
    return out


def import_projects(
    engine: Engine,
    features: list[tuple[dict[str, Any], dict[str, Any]]],
    *,
    crs: str,
    srid: int,
    user: str | None,
) -> list[int]:
    """Register many projects from a file: all of them, or none (errors name the feature)."""
    cleaned = []
    for i, (_, props) in enumerate(features, start=1):
        try:
            cleaned.append(_check(project_properties(props)))
        except InvalidInput as exc:
            raise InvalidInput(f"Feature {i}: {exc.detail}", code=exc.code) from exc
    ids = []
    with engine.begin() as conn:
        for i, ((geometry, _), clean) in enumerate(zip(features, cleaned, strict=True), start=1):
            try:
                wkb, _ = _geometry(conn, geometry, crs, srid)
            except InvalidInput as exc:
                raise InvalidInput(f"Feature {i}: {exc.detail}", code=exc.code) from exc
            ids.append(_save(conn, clean, wkb, srid=srid, user=user, project_id=None))
    return ids


def _lock(conn: Connection, project_id: int) -> int:
    """Lock the project against other writers; its next version number."""
    return next_version(conn, "restoration_project", project_id)


def _check_may_change(
    conn: Connection, project_id: int, user: str | None, may_change_any: bool
) -> None:
    """Only the user who registered a project (or an administrator) changes it."""
    if may_change_any:
        return
    creator = conn.execute(
        text(
            "SELECT recorded_by FROM geoservice.restoration_project_history "
            "WHERE project_id = :p ORDER BY version LIMIT 1"
        ),
        {"p": project_id},
    ).scalar()
    if creator != user:
        raise Forbidden(
            f"Restoration project {project_id} was registered by {creator or 'an import'}; only "
            "that user or an administrator may change, delete or restore it.",
            code="not_your_project",
        )


def _append_state(conn: Connection, project_id: int, change: str, user: str | None) -> int:
    """A new version repeating the latest one with another change mark (delete, restore)."""
    version = _lock(conn, project_id)
    conn.execute(
        text(
            "INSERT INTO geoservice.restoration_project_history (project_id, version, "
            "recorded_by, change, ecosystem_type, data, geom) "
            "SELECT project_id, :v, :u, :c, ecosystem_type, data, geom "
            "FROM geoservice.restoration_project_history WHERE project_id = :p "
            "ORDER BY version DESC LIMIT 1"
        ),
        {"p": project_id, "u": user, "v": version, "c": change},
    )
    return version


def delete_project(
    engine: Engine, project_id: int, *, user: str | None, may_change_any: bool = True
) -> int:
    """Mark a project deleted (its history stays readable; :func:`restore_project` brings it
    back); returns the new version number."""
    with engine.begin() as conn:
        _lock(conn, project_id)
        if _current(conn, project_id) is None:
            raise NotFound(
                f"There is no restoration project {project_id}.", code="project_not_found"
            )
        _check_may_change(conn, project_id, user, may_change_any)
        return _append_state(conn, project_id, "delete", user)


def restore_project(
    engine: Engine, project_id: int, *, user: str | None, may_change_any: bool = True
) -> dict[str, Any]:
    """Bring a deleted project back as it was before the delete (a new version)."""
    with engine.begin() as conn:
        _lock(conn, project_id)
        last = conn.execute(
            text(
                "SELECT change FROM geoservice.restoration_project_history "
                "WHERE project_id = :p ORDER BY version DESC LIMIT 1"
            ),
            {"p": project_id},
        ).scalar()
        if last is None:
            raise NotFound(
                f"There is no restoration project {project_id}.", code="project_not_found"
            )
        if last != "delete":
            raise Conflict(
                f"Restoration project {project_id} is not deleted; there is nothing to restore.",
                code="project_not_deleted",
            )
        _check_may_change(conn, project_id, user, may_change_any)
        _append_state(conn, project_id, "restore", user)
        project = _current(conn, project_id)
    assert project is not None
    return project


_STATE = """
    SELECT DISTINCT ON (h.project_id) h.project_id AS id, h.version, h.recorded_at,
           h.recorded_by, h.change, h.ecosystem_type, h.data, h.geom,
           ST_Area(h.geom) / 10000 AS area_ha
      FROM geoservice.restoration_project_history h
     WHERE (CAST(:recorded AS timestamptz) IS NULL OR h.recorded_at <= :recorded)
     ORDER BY h.project_id, h.version DESC
"""


def _as_dict(row: Any) -> dict[str, Any]:
    data = {
        "id": row.id,
        "version": row.version,
        "recorded_at": row.recorded_at.isoformat(),
        "recorded_by": row.recorded_by,
        "area_ha": round(float(row.area_ha), 4),
        **row.data,
    }
    if row.data.get("rewetting"):  # yearly emissions avoided, from the Wetlands Supplement
        data["carbon_effect"] = rewetting_effect(row.data["rewetting"], float(row.area_ha))
    return data


def _current(conn: Connection, project_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        text(f"SELECT * FROM ({_STATE}) s WHERE id = :p AND change <> 'delete'"),
        {"p": project_id, "recorded": None},
    ).first()
    return _as_dict(row) if row else None


def get_project(engine: Engine, project_id: int) -> dict[str, Any]:
    """The current state of a project."""
    with engine.connect() as conn:
        project = _current(conn, project_id)
        deleted = (
            project is None
            and conn.execute(
                text(
                    "SELECT change = 'delete' FROM geoservice.restoration_project_history "
                    "WHERE project_id = :p ORDER BY version DESC LIMIT 1"
                ),
                {"p": project_id},
            ).scalar()
        )
    if project is None:
        hint = (
            f" It was deleted; POST /api/restoration/projects/{project_id}/restore brings it "
            "back, and its history stays readable."
            if deleted
            else ""
        )
        raise NotFound(
            f"There is no restoration project {project_id}.{hint}", code="project_not_found"
        )
    return project


def list_projects(
    engine: Engine, *, limit: int, offset: int, recorded_as_of: datetime | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The registry as it stands now, or as it stood at ``recorded_as_of``."""
    with engine.connect() as conn:
        params = {"recorded": recorded_as_of, "limit": limit, "offset": offset}
        total = conn.execute(
            text(f"SELECT count(*) FROM ({_STATE}) s WHERE change <> 'delete'"), params
        ).scalar_one()
        rows = conn.execute(
            text(
                f"SELECT * FROM ({_STATE}) s WHERE change <> 'delete' ORDER BY id "
                "LIMIT :limit OFFSET :offset"
            ),
            params,
        ).all()
    return [_as_dict(r) for r in rows], int(total)


def project_history(engine: Engine, project_id: int) -> list[dict[str, Any]]:
    """Every recorded version of a project: who, when, what."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT project_id AS id, version, recorded_at, recorded_by, change, data, "
                "ST_Area(geom) / 10000 AS area_ha FROM geoservice.restoration_project_history "
                "WHERE project_id = :p ORDER BY version"
            ),
            {"p": project_id},
        ).all()
    if not rows:
        raise NotFound(f"There is no restoration project {project_id}.", code="project_not_found")
    return [{**_as_dict(r), "change": r.change} for r in rows]


@dataclass(frozen=True)
class Region:
    """Where progress is measured: a kommune, a fylke or all of Norway."""

    code: str
    kind: str  # "kommune", "fylke" or "country"


def _region(code: str) -> Region:
    code = code.strip().upper()
    if code == "NO":
        return Region("NO", "country")
    if code.isdigit() and len(code) == 4:
        return Region(code, "kommune")
    if code.isdigit() and len(code) == 2:
        return Region(code, "fylke")
    raise InvalidInput(
        f"region {code!r} is not a kommunenummer (4 digits), fylkesnummer (2 digits) or NO.",
        code="bad_region",
    )


def _counting_statuses() -> list[str]:
    rows = codelists.load("restoration_status").rows
    return [str(c) for c, r in rows.items() if r["counts"] == "yes"]


def _status_on(as_of: str) -> str:
    """A project's status on a day: ``as_of`` is a bound parameter or a column of ours."""
    return f"""(SELECT e->>'status' FROM jsonb_array_elements(s.data->'status_history') e
                  WHERE (e->>'date')::date <= {as_of}
                  ORDER BY (e->>'date')::date DESC LIMIT 1)"""


# Cell size of the grid that splits the country when no region is asked for.
NATIONAL_CELL_M = 10_000
# Most vertices per piece when a region is split into local units.
UNIT_VERTICES = 256


@dataclass(frozen=True)
class UnitAreas:
    """Hectares per region code: the baseline, and per date what is restored in and outside."""

    baseline: dict[str, float]
    restored: dict[tuple[str, date], float]
    outside: dict[tuple[str, date], float]
    coverage: bool = False  # measured by the no-overlap fast path


_PROJECTS = f"""
WITH dates AS (SELECT unnest(CAST(:dates AS date[])) AS as_of),
    state AS MATERIALIZED (
        SELECT s.id, s.geom, s.data FROM ({_STATE}) s
         WHERE s.change <> 'delete'
           AND (CAST(:eco AS text) IS NULL OR s.ecosystem_type = :eco)),
    projects AS (
        SELECT dates.as_of, s.id, s.geom FROM state s, dates
         WHERE {_status_on("dates.as_of")} = ANY(:counting)),"""

# Projects cut to the units they fall in ...
_CLIP_TO_UNITS = """
    clipped AS (
        SELECT un.uid, un.code, p.as_of, p.id,
               CASE WHEN p.geom @ un.u AND (un.box OR ST_Within(p.geom, un.u)) THEN p.geom
                    ELSE ST_Intersection(p.geom, un.u) END AS g
          FROM projects p JOIN {units} un
            ON un.u && p.geom AND ST_Intersects(p.geom, un.u)),"""
# ... or, for the whole country, left as they are.
_NO_CLIP = """
    clipped AS (SELECT 0::bigint AS uid, 'NO'::text AS code, p.as_of, p.id, p.geom AS g
                  FROM projects p),"""
# Pieces of projects per unit and date, with the size of the cluster of touching pieces
# they belong to (n = 1: touches no other project).
_PIECES = """
    clustered AS (
        SELECT uid, code, as_of, id, g,
               ST_ClusterDBSCAN(g, 0, 1) OVER (PARTITION BY uid, as_of) AS cid
          FROM clipped WHERE NOT ST_IsEmpty(g))
SELECT *, count(*) OVER (PARTITION BY uid, as_of, cid) AS n FROM clustered"""
# A project piece touching no other is measured once for all the dates it counts on.
_SINGLES = """
SELECT uid, min(code) AS code, array_agg(as_of) AS dates, (array_agg(g))[1] AS g
  FROM {pieces} WHERE n = 1 GROUP BY id, uid"""

_BASELINE_FILTER = """d.version_id = ANY(:degraded)
       AND (CAST(:eco AS text) IS NULL OR d.attrs->>'ecosystem_type' = :eco)"""
# Disjoint baseline pieces d reaching a project piece x, and their geometry column.
_FEATURES = ("geoservice.feature d", f"d.geom && x.g AND {_BASELINE_FILTER}", "d.geom")
_BASE_PIECES = ("{base} d", "d.g && x.g AND d.uid = x.uid", "d.g")


def _measure_sql(base_area: str, baseline: tuple[str, str, str]) -> str:
    """Baseline per code, and restored area inside and outside it per code and date.

    Single pieces are joined to the baseline in one plain join over a real table, which
    PostgreSQL runs in parallel; the few clusters of touching projects are unioned first,
    so overlaps count once.
    """
    table, on, geom = baseline
    return f"""
WITH base_area AS ({base_area}),
single_area AS (
    SELECT code, dates, sum(ST_Area(g)) AS area FROM {{singles}} GROUP BY code, dates),
single_inside AS (
    SELECT x.code, x.dates, sum(ST_Area(ST_Intersection({geom}, x.g))) AS inside
      FROM {{singles}} x JOIN {table} ON {on}
     GROUP BY x.code, x.dates),
multi AS (
    SELECT x.code, x.as_of, ST_Area(x.g) AS area, coalesce(i.a, 0) AS inside
      FROM (SELECT min(code) AS code, as_of, ST_Union(g) AS g, min(uid) AS uid
              FROM {{pieces}} WHERE n > 1 GROUP BY uid, as_of, cid) x
      LEFT JOIN LATERAL (
          SELECT sum(ST_Area(ST_Intersection({geom}, x.g))) AS a FROM {table} WHERE {on}) i
        ON true),
restored AS (
    SELECT code, as_of, sum(inside) AS inside, greatest(sum(area) - sum(inside), 0) AS outside
      FROM (SELECT code, unnest(dates) AS as_of, area, 0 AS inside FROM single_area
            UNION ALL
            SELECT code, unnest(dates), 0, inside FROM single_inside
            UNION ALL
            SELECT code, as_of, area, inside FROM multi) t
     GROUP BY code, as_of)
SELECT 'base' AS part, code, NULL::date AS as_of, a, 0.0 AS b FROM base_area
UNION ALL
SELECT 'restored', code, as_of, inside, outside FROM restored"""


# Baseline polygons that may overlap: cut to units, and within each unit the ones that touch
# are unioned cluster by cluster (like projects), giving disjoint baseline pieces.
_UNION_BASE_SQL = f"""
WITH base_clipped AS (
    SELECT un.uid, un.code,
           CASE WHEN d.geom @ un.u AND (un.box OR ST_Within(d.geom, un.u)) THEN d.geom
                ELSE ST_Intersection(d.geom, un.u) END AS g
      FROM {{units}} un JOIN geoservice.feature d
        ON d.geom && un.u AND ST_Intersects(d.geom, un.u) AND {_BASELINE_FILTER}),
base_clustered AS (
    SELECT uid, code, g, ST_ClusterDBSCAN(g, 0, 1) OVER (PARTITION BY uid) AS cid
      FROM base_clipped WHERE NOT ST_IsEmpty(g)),
base_sized AS (
    SELECT *, count(*) OVER (PARTITION BY uid, cid) AS n FROM base_clustered)
SELECT uid, code, g FROM base_sized WHERE n = 1
UNION ALL
SELECT uid, min(code), ST_Union(g) FROM base_sized WHERE n > 1 GROUP BY uid, cid"""
_UNION_SQL = _measure_sql(
    "SELECT code, sum(ST_Area(g)) AS a FROM {base} GROUP BY code", _BASE_PIECES
)
# Baseline polygons known not to overlap: areas add up, and only the baseline polygons that
# projects touch are intersected at all.
_COVERAGE_SQL = _measure_sql(
    f"""
    SELECT un.code,
           sum(CASE WHEN d.geom @ un.u AND (un.box OR ST_Within(d.geom, un.u))
                    THEN ST_Area(d.geom) ELSE ST_Area(ST_Intersection(d.geom, un.u)) END) AS a
      FROM {{units}} un JOIN geoservice.feature d
        ON d.geom && un.u AND ST_Intersects(d.geom, un.u) AND {_BASELINE_FILTER}
     GROUP BY un.code""",
    _FEATURES,
)
# The whole country with an overlap-free baseline: no units at all.
_COVERAGE_NATIONAL_SQL = _measure_sql(
    f"""
    SELECT 'NO'::text AS code, sum(ST_Area(d.geom)) AS a
      FROM geoservice.feature d WHERE {_BASELINE_FILTER}
    HAVING count(*) > 0""",
    _FEATURES,
)


def baseline_is_coverage(conn: Connection, degraded: list[int]) -> bool:
    """True when no two active baseline polygons share interior area (checked, not assumed).

    Each version records at upload whether it overlaps itself; overlaps between versions
    are looked for here.
    """
    unchecked_or_overlapping = conn.execute(
        text(
            "SELECT bool_or(self_overlaps IS NOT FALSE) FROM geoservice.layer_version "
            "WHERE id = ANY(:v)"
        ),
        {"v": degraded},
    ).scalar()
    if unchecked_or_overlapping:
        return False
    if len(degraded) < 2:
        return True
    return not conn.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM geoservice.feature a JOIN geoservice.feature b "
            "ON a.geom && b.geom AND a.version_id < b.version_id "
            "AND ST_Relate(a.geom, b.geom, '2********') "
            "WHERE a.version_id = ANY(:v) AND b.version_id = ANY(:v))"
        ),
        {"v": degraded},
    ).scalar()


def _scratch(conn: Connection, name: str) -> str:
    """A table name for one step of a measurement, private to this database session.

    Steps go to unlogged tables rather than temporary ones because parallel workers can
    scan them. They are created inside the caller's transaction and dropped before it ends,
    so a failure or a killed process (the transaction rolls back) leaves nothing behind.
    """
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    table = f"geoservice.scratch_{name}_{pid}"
    conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    return table


def _make(
    conn: Connection, table: str, select: str, params: dict[str, Any], gist: str | None = None
) -> None:
    """Fill a scratch table from a query, index it, and tell the planner how big it is."""
    conn.execute(text(f"CREATE UNLOGGED TABLE {table} AS {select}"), params)
    if gist:
        conn.execute(text(f"CREATE INDEX ON {table} USING gist ({gist})"))
    conn.execute(text(f"ANALYZE {table}"))


def _unit_areas(
    conn: Connection, units_sql: str | None, params: dict[str, Any], dates: list[date]
) -> UnitAreas:
    """Baseline, area under restoration and restoration outside the baseline, per region.

    The naive way unions every degraded polygon and every project in the region and then
    intersects the two unions; on a national baseline of a million polygons that one union is
    the whole cost. Here regions are cut into small units (``units_sql`` yields ``code, u``;
    the units of a code partition it; None = the whole country, code 'NO'), projects that
    touch are unioned cluster by cluster, so overlaps count once, and a baseline checked
    free of overlaps is measured by adding areas, intersecting only the baseline polygons
    that projects reach; otherwise the baseline is unioned per unit. Either way the result
    equals the naive query up to rounding. Each step lands in a scratch table, so the
    planner knows its size.
    """
    coverage = baseline_is_coverage(conn, list(params["degraded"]))
    conn.execute(text("SET LOCAL jit = off"))  # compiling costs more than these queries run
    # Each project probes the baseline index for the one or two polygons it touches; a bitmap
    # scan's set-up costs more than such a probe.
    conn.execute(text("SET LOCAL enable_bitmapscan = off"))
    conn.execute(text("SET LOCAL work_mem = '64MB'"))  # the window sorts stay in memory
    tables = {name: _scratch(conn, name) for name in ("units", "base", "pieces", "singles")}
    run = {**params, "dates": dates, "recorded": None, "counting": _counting_statuses()}
    if coverage and units_sql is None:
        clip, measure = _NO_CLIP, _COVERAGE_NATIONAL_SQL
    else:
        _make(
            conn,
            tables["units"],
            "SELECT code, row_number() OVER () AS uid, u, "
            "ST_NPoints(u) = 5 AND ST_Area(u) = ST_Area(ST_Envelope(u)) AS box "
            f"FROM ({units_sql or _national_units()}) x",
            params,
            gist="u",
        )
        clip, measure = _CLIP_TO_UNITS, _COVERAGE_SQL
        if not coverage:
            _make(conn, tables["base"], _UNION_BASE_SQL.format(**tables), params, gist="g")
            measure = _UNION_SQL
    _make(conn, tables["pieces"], (_PROJECTS + clip + _PIECES).format(**tables), run)
    _make(conn, tables["singles"], _SINGLES.format(**tables), {})
    rows = conn.execute(text(measure.format(**tables)), run).all()
    for table in tables.values():
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    result = UnitAreas({}, {}, {}, coverage)
    for r in rows:
        if r.part == "base":
            result.baseline[r.code] = float(r.a) / 10_000
        else:
            result.restored[(r.code, r.as_of)] = float(r.a) / 10_000
            result.outside[(r.code, r.as_of)] = float(r.b) / 10_000
    return result


def _years_before(day: date, years: int) -> date:
    """The same day ``years`` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _national_units() -> str:
    """Grid cells over everything degraded or restored, all with code 'NO'."""
    return f"""
        SELECT 'NO' AS code, cell.geom AS u
          FROM (SELECT ST_SetSRID(ST_Expand(ST_Extent(g)::geometry, 1), max(srid)) AS e
                  FROM (SELECT geom AS g, ST_SRID(geom) AS srid FROM geoservice.feature
                         WHERE version_id = ANY(:degraded)
                        UNION ALL
                        SELECT geom, ST_SRID(geom)
                          FROM geoservice.restoration_project_history) all_geoms) ext,
               ST_SquareGrid({NATIONAL_CELL_M}, ext.e) AS cell
         WHERE ext.e IS NOT NULL"""


def _region_units(one_code: bool) -> str:
    """A kommune's or fylke's boundary (or all of them) cut into units of few vertices; the
    attribute that holds the region code is the bound ``:key``."""
    where = "AND attrs->>CAST(:key AS text) = :code" if one_code else ""
    return f"""
        SELECT code, ST_Subdivide(g, {UNIT_VERTICES}) AS u
          FROM (SELECT attrs->>CAST(:key AS text) AS code, ST_Union(geom) AS g
                  FROM geoservice.feature
                 WHERE version_id = ANY(:boundaries)
                   AND attrs->>CAST(:key AS text) IS NOT NULL {where}
                 GROUP BY 1) r"""


def _ecosystem(ecosystem: str | None) -> str | None:
    """The ecosystem type code asked for (None = all); an unknown one is refused."""
    if not ecosystem:
        return None
    cl = codelists.load("ecosystem_type")
    if cl.normalise(ecosystem) not in cl.rows:
        raise InvalidInput(
            f"ecosystem {ecosystem!r} is not one of: {', '.join(map(str, cl.codes))}.",
            code="unknown_ecosystem_type",
        )
    return str(cl.normalise(ecosystem))


@dataclass(frozen=True)
class _Measured:
    """One measurement of a region (or drawn area) for one ecosystem over several dates."""

    region: Region
    code: str
    ecosystem: str | None
    degraded: list[int]
    boundaries: list[int]
    areas: UnitAreas


def _measure(
    engine: Engine,
    *,
    region: str,
    ecosystem: str | None,
    dates: list[date],
    area: tuple[dict[str, Any], str, int] | None = None,
) -> _Measured:
    """Resolve the region to units and measure baseline and restoration on every date."""
    reg = Region("polygon", "polygon") if area else _region(region)
    eco = _ecosystem(ecosystem)
    with engine.connect() as conn:
        degraded = [v.version_id for v in active_versions(conn, "degraded_areas")]
        if not degraded:
            raise InvalidInput(
                "No degraded-area baseline has been uploaded (layer kind degraded_areas).",
                code="no_baseline",
            )
        boundaries = [v.version_id for v in active_versions(conn, "boundaries")]
        params: dict[str, Any] = {
            "degraded": degraded,
            "eco": eco,
            "boundaries": boundaries,
            "code": reg.code,
        }
        if area is not None:
            geojson, crs_text, srid = area
            params["area"], _ = _geometry(conn, geojson, crs_text, srid)
            params["srid"] = srid
            units: str | None = (
                f"SELECT 'polygon' AS code, ST_Subdivide(ST_GeomFromWKB(:area, :srid), "
                f"{UNIT_VERTICES}) AS u"
            )
        elif reg.kind == "country":
            units = None
        else:
            params["key"] = "kommunenummer" if reg.kind == "kommune" else "fylkesnummer"
            found = conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM geoservice.feature "
                    "WHERE version_id = ANY(:boundaries) AND attrs->>CAST(:key AS text) = :code)"
                ),
                params,
            ).scalar()
            if not found:
                raise NotFound(
                    f"No {reg.kind} {reg.code} in the active boundary layers.",
                    code="region_not_found",
                )
            units = _region_units(one_code=True)
        areas = _unit_areas(conn, units, params, dates)
    code = "polygon" if area is not None else reg.code
    return _Measured(reg, code, eco, degraded, boundaries, areas)


def progress(
    engine: Engine,
    *,
    region: str = "NO",
    ecosystem: str | None = None,
    as_of: date | None = None,
    area: tuple[dict[str, Any], str, int] | None = None,
) -> dict[str, Any]:
    """Baseline, area under restoration, share, and the way to each target from ``as_of``.

    ``area`` = (GeoJSON polygon, its CRS, storage SRID) measures inside a drawn polygon
    instead of a kommune, fylke or the whole country.
    """
    as_of = as_of or date.today()
    three_back = _years_before(as_of, 3)
    measured = _measure(
        engine, region=region, ecosystem=ecosystem, dates=[as_of, three_back], area=area
    )
    reg, code, eco, areas = measured.region, measured.code, measured.ecosystem, measured.areas
    degraded, boundaries = measured.degraded, measured.boundaries
    baseline = areas.baseline.get(code, 0.0)
    restored = areas.restored.get((code, as_of), 0.0)
    outside = areas.outside.get((code, as_of), 0.0)
    restored_then = areas.restored.get((code, three_back), 0.0)
    share = restored / baseline if baseline else 0.0
    pace_3y = (restored - restored_then) / 3
    goals = []
    for t in targets():
        target_ha = baseline * t["share"]
        remaining = max(target_ha - restored, 0.0)
        years_left = t["year"] - as_of.year - (as_of.timetuple().tm_yday - 1) / 365.25
        projected = (
            as_of.year
            if remaining == 0
            else (round(as_of.year + remaining / pace_3y, 1) if pace_3y > 0 else None)
        )
        goals.append(
            {
                **t,
                "target_ha": round(target_ha, 4),
                "remaining_ha": round(remaining, 4),
                "pace_needed_ha_per_year": round(remaining / years_left, 4)
                if years_left > 0
                else None,
                "projected_year": projected,
                "on_track": remaining == 0 or (projected is not None and projected <= t["year"]),
            }
        )
    return {
        "region": reg.code,
        "region_kind": reg.kind,
        "ecosystem": eco,
        "as_of": as_of.isoformat(),
        "baseline_degraded_ha": round(baseline, 4),
        "under_restoration_ha": round(restored, 4),
        "share": round(share, 6),
        "restoration_outside_baseline_ha": round(outside, 4),
        "pace_last_3_years_ha_per_year": round(pace_3y, 4),
        "targets": goals,
        "provenance": {
            "degraded_area_versions": degraded,
            "boundary_versions": boundaries,
            "counting_statuses": _counting_statuses(),
            "baseline_method": "sum of areas (baseline checked free of overlaps)"
            if areas.coverage
            else "union per local unit (baseline may overlap)",
        },
    }


def timeseries(
    engine: Engine,
    *,
    region: str = "NO",
    start_year: int | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """Area under restoration at the end of each year, per ecosystem type (and all together).

    The shape a national report on the Target 2 headline indicator "area under restoration"
    needs. Starts at the earliest baseline year of the degraded-area layers unless given.
    """
    end = end or date.today()
    with engine.connect() as conn:
        degraded = [v.version_id for v in active_versions(conn, "degraded_areas")]
        first = (
            conn.execute(
                text(
                    "SELECT min((attrs->>'baseline_year')::int), "
                    "array_agg(DISTINCT attrs->>'ecosystem_type') "
                    "FROM geoservice.feature WHERE version_id = ANY(:v)"
                ),
                {"v": degraded},
            ).one()
            if degraded
            else (None, [])
        )
    start = start_year or first[0] or end.year
    ecosystems: list[str | None] = [None, *sorted(e for e in (first[1] or []) if e)]
    dates = [min(date(year, 12, 31), end) for year in range(start, end.year + 1)]
    # One measurement per ecosystem over all the year ends: the baseline is cut and unioned
    # once, not once a year (12 years x 7 ecosystems were 84 measurements).
    measured = {
        eco: _measure(engine, region=region, ecosystem=eco, dates=dates) for eco in ecosystems
    }
    rows = []
    for as_of in dates:
        for eco, m in measured.items():
            baseline = m.areas.baseline.get(m.code, 0.0)
            restored = m.areas.restored.get((m.code, as_of), 0.0)
            rows.append(
                {
                    "year": as_of.year,
                    "as_of": as_of.isoformat(),
                    "region": m.region.code,
                    "ecosystem": eco or "all",
                    "baseline_degraded_ha": round(baseline, 4),
                    "under_restoration_ha": round(restored, 4),
                    "share": round(restored / baseline if baseline else 0.0, 6),
                }
            )
    return rows


def timeseries_csv(rows: list[dict[str, Any]]) -> str:
    """The time series as CSV text."""
    import io

    buffer = io.StringIO()
    columns = [
        "year",
        "as_of",
        "region",
        "ecosystem",
        "baseline_degraded_ha",
        "under_restoration_ha",
        "share",
    ]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


REWETTING_CSV = files("analyses") / "factors" / "rewetting.csv"
DRAINED_USES = ("forest_poor", "forest_rich", "cropland", "grassland", "peat_extraction")


@cache
def rewetting_factors() -> dict[str, dict[str, Any]]:
    """IPCC Wetlands Supplement defaults used for rewetting, each with its source."""
    with REWETTING_CSV.open(encoding="utf-8") as fh:
        return {r["item"]: {**r, "value": float(r["value"])} for r in csv.DictReader(fh)}


def rewetting_effect(rewetting: dict[str, Any], area_ha: float) -> dict[str, Any]:
    """Yearly emissions avoided by rewetting drained peat, t CO2e, with the factors used.

    avoided = (drained CO2 + drained DOC) − (rewetted CO2 + rewetted CH4 + rewetted DOC), the
    Tier 1 defaults with no transition period after rewetting.
    """
    use = rewetting.get("drained_land_use")
    nutrient = rewetting.get("nutrient", "poor")
    if use not in DRAINED_USES or nutrient not in ("poor", "rich"):
        raise InvalidInput(
            f"rewetting needs drained_land_use (one of {', '.join(DRAINED_USES)}) and nutrient "
            "(poor or rich).",
            code="bad_rewetting",
        )
    f = rewetting_factors()
    c_to_co2 = 44 / 12
    drained = f[f"drained_{use}"]["value"] + f["drained_doc"]["value"]
    rewetted_co2 = f[f"rewetted_co2_c_{nutrient}"]["value"] * c_to_co2
    ch4 = f[f"rewetted_ch4_c_{nutrient}"]["value"] / 1000 * 16 / 12 * f["gwp100_ch4"]["value"]
    doc = f["drained_doc"]["value"] - f["doc_reduction_c"]["value"] * c_to_co2
    per_ha = drained - (rewetted_co2 + ch4 + doc)
    used = [
        f"drained_{use}",
        "drained_doc",
        f"rewetted_co2_c_{nutrient}",
        f"rewetted_ch4_c_{nutrient}",
        "doc_reduction_c",
        "gwp100_ch4",
    ]
    return {
        "t_co2e_per_ha_per_year": round(per_ha, 4),
        "t_co2e_per_year": round(per_ha * area_ha, 3),
        "area_ha": round(area_ha, 4),
        "factors": [
            {k: f[name][k] for k in ("item", "value", "unit", "status", "source")} for name in used
        ],
    }


def shares_by_region_over(
    engine: Engine,
    *,
    level: str = "kommune",
    dates: list[date],
    ecosystem: str | None = None,
    simplify_m: float = 50.0,
) -> dict[str, dict[str, Any]]:
    """Per date, a FeatureCollection of regions with baseline, restored area and share.

    Same arithmetic as :func:`progress` (baseline = union of degraded areas in the region,
    restored = union of counting projects inside it), for all regions and dates at once, by
    local units (see :func:`_unit_areas`). Regions without baseline are left out.
    Geometry is simplified for display and returned in WGS 84.
    """
    if level not in ("kommune", "fylke"):
        raise InvalidInput("level must be kommune or fylke.", code="bad_level")
    key = "kommunenummer" if level == "kommune" else "fylkesnummer"
    ecosystem = _ecosystem(ecosystem)
    empty = {
        d.isoformat(): {"type": "FeatureCollection", "features": [], "as_of": d.isoformat()}
        for d in dates
    }
    with engine.connect() as conn:
        degraded = [v.version_id for v in active_versions(conn, "degraded_areas")]
        boundaries = [v.version_id for v in active_versions(conn, "boundaries")]
        if not degraded or not boundaries:
            return empty
        params = {
            "key": key,
            "boundaries": boundaries,
            "degraded": degraded,
            "eco": ecosystem,
            "dates": dates,
            "recorded": None,
            "counting": _counting_statuses(),
            "tol": simplify_m,
        }
        areas = _unit_areas(conn, _region_units(one_code=False), params, dates)
        codes = [c for c, ha in areas.baseline.items() if ha > 0]
        bases = conn.execute(
            text(
                """
                SELECT attrs->>:key AS code,
                       min(CASE WHEN :key = 'kommunenummer' OR NOT attrs ? 'kommunenummer'
                                THEN attrs->>'navn' END) AS name,
                       ST_AsGeoJSON(ST_Transform(ST_SimplifyPreserveTopology(ST_Union(geom),
                                    :tol), 4326), 5)::json AS geometry
                  FROM geoservice.feature
                 WHERE version_id = ANY(:boundaries) AND attrs->>:key = ANY(:codes)
                 GROUP BY 1 ORDER BY 1
                """
            ),
            {**params, "codes": codes},
        ).all()
    out = {}
    for d in dates:
        features = []
        for b in bases:
            baseline = areas.baseline[b.code]
            ha = areas.restored.get((b.code, d), 0.0)
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "code": b.code,
                        "name": b.name,
                        "baseline_degraded_ha": round(baseline, 2),
                        "under_restoration_ha": round(ha, 2),
                        "share_percent": round(100 * ha / baseline, 2) if baseline else 0.0,
                    },
                    "geometry": b.geometry,
                }
            )
        out[d.isoformat()] = {
            "type": "FeatureCollection",
            "features": features,
            "as_of": d.isoformat(),
            "provenance": {"degraded_area_versions": degraded, "boundary_versions": boundaries},
        }
    return out


def projects_geojson(engine: Engine, *, as_of: date) -> dict[str, Any]:
    """Current registry entries with their status on ``as_of`` (None = not yet registered)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"""
                SELECT s.id, s.data->>'name' AS name, s.ecosystem_type,
                       s.data->>'restoration_type' AS restoration_type,
                       s.data->>'responsible_org' AS organisation, s.area_ha,
                       {_status_on(":as_of")} AS status,
                       ST_AsGeoJSON(ST_Transform(s.geom, 4326), 6)::json AS geometry
                  FROM ({_STATE}) s WHERE s.change <> 'delete' ORDER BY s.id
                """
            ),
            {"as_of": as_of, "recorded": None},
        ).all()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.id,
                "properties": {
                    "id": r.id,
                    "name": r.name,
                    "status": r.status or "not registered yet",
                    "ecosystem_type": r.ecosystem_type,
                    "restoration_type": r.restoration_type,
                    "organisation": r.organisation,
                    "area_ha": round(float(r.area_ha), 2),
                },
                "geometry": r.geometry,
            }
            for r in rows
            if r.status is not None
        ],
    }
