"""Measuring restoration: the union of counting projects inside the degraded baseline, per
region and date, in steps over unlogged scratch tables (overlaps count once; restoration
outside the baseline is kept apart)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, text

from analyses.restoration.registry import STATE_SQL, project_geometry
from core.errors import InvalidInput, NotFound
from layers import codelists
from layers.catalog import active_versions, versions_overlap_free


@dataclass(frozen=True)
class Region:
    """Where progress is measured: a kommune, a fylke or all of Norway."""

    code: str
    kind: str  # "kommune", "fylke" or "country"


def _region(code: str, engine: Engine | None = None) -> Region:
    """A region by number (kommune 4 digits, fylke 2, NO), or by a kommune's or fylke's name
    in the active boundaries layer (``Ås``, ``Akershus``)."""
    given = code.strip()
    code = given.upper()
    if code == "NO":
        return Region("NO", "country")
    if code.isdigit() and len(code) == 4:
        return Region(code, "kommune")
    if code.isdigit() and len(code) == 2:
        return Region(code, "fylke")
    if engine is not None and given and not given.isdigit():
        return _region_named(engine, given)
    raise InvalidInput(
        f"region {given!r} is not a kommunenummer (4 digits), fylkesnummer (2 digits), the name "
        "of a kommune or fylke, or NO.",
        code="bad_region",
    )


def _plain(name: str) -> str:
    """A name as typed on any keyboard: ``Aas`` finds Ås, ``Baerum`` Bærum."""
    folded = name.strip().casefold()
    return folded.replace("å", "aa").replace("æ", "ae").replace("ø", "o")


def _region_named(engine: Engine, name: str) -> Region:
    """The kommune or fylke of that name in the active boundaries layers."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT f.attrs->>'kommunenummer' AS k, f.attrs->>'fylkesnummer' AS fy, "
                "f.attrs->>'navn' AS navn FROM geoservice.feature f JOIN geoservice.layer l "
                "ON l.active_version_id = f.version_id AND l.kind = 'boundaries' "
                "WHERE f.attrs ? 'navn' ORDER BY 1, 2"
            )
        ).all()
    found = [r for r in rows if str(r.navn).casefold() == name.strip().casefold()]
    found = found or [r for r in rows if _plain(str(r.navn)) == _plain(name)]
    if not found:
        plain = {_plain(str(r.navn)): str(r.navn) for r in rows}
        close = [plain[c] for c in difflib.get_close_matches(_plain(name), plain, n=3, cutoff=0.6)]
        raise InvalidInput(
            f"No kommune or fylke is called {name!r} in the boundaries layer"
            + (f"; did you mean {', '.join(close)}?" if close else ".")
            + " Give its number instead (e.g. 3218 for Ås).",
            code="bad_region",
        )
    if len(found) > 1:
        numbers = ", ".join(f"{r.k or r.fy} {r.navn}" for r in found)
        raise InvalidInput(
            f"Several regions are called {name}: {numbers}. Give the number of the one you mean.",
            code="ambiguous_region",
        )
    row = found[0]
    return Region(row.k, "kommune") if row.k else Region(row.fy, "fylke")


def counting_statuses() -> list[str]:
    """The statuses under which a project counts as under restoration (code list)."""
    rows = codelists.load("restoration_status").rows
    return [str(c) for c, r in rows.items() if r["counts"] == "yes"]


def status_on(as_of: str) -> str:
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
        SELECT s.id, s.geom, s.data FROM ({STATE_SQL}) s
         WHERE s.change <> 'delete'
           AND (CAST(:eco AS text) IS NULL OR s.ecosystem_type = :eco) {{near_units}}),
    projects AS (
        SELECT dates.as_of, s.id, s.geom FROM state s, dates
         WHERE {status_on("dates.as_of")} = ANY(:counting)),"""

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
    if not versions_overlap_free(conn, degraded):
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


def unit_areas(
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
    run = {**params, "dates": dates, "recorded": None, "counting": counting_statuses()}
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
    # Measuring some regions, only projects near their units are dated at all (the rest of
    # the country's projects cannot reach them).
    near = (
        f"AND EXISTS (SELECT 1 FROM {tables['units']} un WHERE un.u && s.geom)"
        if clip is _CLIP_TO_UNITS
        else ""
    )
    pieces_sql = (_PROJECTS + clip + _PIECES).format(**tables, near_units=near)
    _make(conn, tables["pieces"], pieces_sql, run)
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


def region_units(some_codes: bool, in_cell: bool = False) -> str:
    """Kommuner's or fylker's boundaries (the bound ``:codes``, or all of them) cut into units
    of few vertices; the attribute that holds the region code is the bound ``:key``.

    ``in_cell`` cuts only the part of each region inside the grid cell (``:cx``, ``:cy``) of
    ``:size`` metres: a large region's cells partition it, so their measurements add up to
    the region's (areas add; projects are unioned within each unit either way).
    """
    where = "AND attrs->>CAST(:key AS text) = ANY(:codes)" if some_codes else ""
    g = (
        "ST_CollectionExtract(ST_Intersection(g, ST_MakeEnvelope(:cx * CAST(:size AS float8), "
        ":cy * CAST(:size AS float8), (:cx + 1) * CAST(:size AS float8), "
        "(:cy + 1) * CAST(:size AS float8), ST_SRID(g))), 3)"
        if in_cell
        else "g"
    )
    return f"""
        SELECT code, ST_Subdivide({g}, {UNIT_VERTICES}) AS u
          FROM (SELECT attrs->>CAST(:key AS text) AS code, ST_Union(geom) AS g
                  FROM geoservice.feature
                 WHERE version_id = ANY(:boundaries)
                   AND attrs->>CAST(:key AS text) IS NOT NULL {where}
                 GROUP BY 1) r"""


def ecosystem_code(ecosystem: str | None) -> str | None:
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


def measure_areas(
    engine: Engine,
    *,
    region: str,
    ecosystem: str | None,
    dates: list[date],
    area: tuple[dict[str, Any], str, int] | None = None,
) -> _Measured:
    """Resolve the region to units and measure baseline and restoration on every date."""
    reg = Region("polygon", "polygon") if area else _region(region, engine)
    return measure_regions(engine, [reg], ecosystem=ecosystem, dates=dates, area=area)[0]


def measure_regions(
    engine: Engine,
    regions: list[Region],
    *,
    ecosystem: str | None,
    dates: list[date],
    area: tuple[dict[str, Any], str, int] | None = None,
    cell: tuple[int, int, float] | None = None,
) -> list[_Measured]:
    """Several kommuner (or several fylker) measured in one pass over their units: each
    region's figures are those it has measured alone (its units are the same). With
    ``cell`` = (column, row, size in metres) only the units in that grid cell are measured
    (a part of a large region; the parts add up to it)."""
    reg = regions[0]
    if len({r.kind for r in regions}) > 1:
        raise ValueError("regions measured together are of one kind")
    eco = ecosystem_code(ecosystem)
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
            "codes": [r.code for r in regions],
        }
        if cell is not None:
            params["cx"], params["cy"], params["size"] = cell
        if area is not None:
            geojson, crs_text, srid = area
            params["area"], _ = project_geometry(conn, geojson, crs_text, srid)
            params["srid"] = srid
            units: str | None = (
                f"SELECT 'polygon' AS code, ST_Subdivide(ST_GeomFromWKB(:area, :srid), "
                f"{UNIT_VERTICES}) AS u"
            )
        elif reg.kind == "country":
            units = None
        else:
            params["key"] = "kommunenummer" if reg.kind == "kommune" else "fylkesnummer"
            found = set(
                conn.execute(
                    text(
                        "SELECT DISTINCT attrs->>CAST(:key AS text) FROM geoservice.feature "
                        "WHERE version_id = ANY(:boundaries) "
                        "AND attrs->>CAST(:key AS text) = ANY(:codes)"
                    ),
                    params,
                ).scalars()
            )
            missing = [r.code for r in regions if r.code not in found]
            if missing:
                raise NotFound(
                    f"No {reg.kind} {', '.join(missing)} in the active boundary layers.",
                    code="region_not_found",
                )
            units = region_units(some_codes=True, in_cell=cell is not None)
        areas = unit_areas(conn, units, params, dates)
    if area is not None:
        return [_Measured(reg, "polygon", eco, degraded, boundaries, areas)]
    return [_Measured(r, r.code, eco, degraded, boundaries, areas) for r in regions]
