"""The restoration registry: projects, their versions (who, when, what) and who may change them.

Every change to a project is a new history row, so the registry can be read as it stood at
any time; a delete is a version too, and ``restore_project`` undoes it.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from analyses.restoration.rewetting import rewetting_effect
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.versions import next_version
from layers import codelists
from layers.crs import epsg_of, parse_crs

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


def project_geometry(
    conn: Connection, geojson: dict[str, Any], crs: str, srid: int
) -> tuple[bytes, bool]:
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
        wkb, repaired = project_geometry(conn, geometry, crs, srid)
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
                wkb, _ = project_geometry(conn, geometry, crs, srid)
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


STATE_SQL = """
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
        text(f"SELECT * FROM ({STATE_SQL}) s WHERE id = :p AND change <> 'delete'"),
        {"p": project_id, "recorded": None},
    ).first()
    return _as_dict(row) if row else None


def add_status(
    engine: Engine,
    project_id: int,
    status: str,
    on: str,
    *,
    srid: int,
    user: str | None,
    may_change_any: bool = True,
) -> dict[str, Any]:
    """Record a project's next status (a new version; the area stays as it is)."""
    current = get_project(engine, project_id)
    with engine.connect() as conn:
        geometry = conn.execute(
            text(f"SELECT ST_AsGeoJSON(geom) FROM ({STATE_SQL}) s WHERE id = :p"),
            {"p": project_id, "recorded": None},
        ).scalar_one()
    keep = {"id", "version", "recorded_at", "recorded_by", "area_ha", "carbon_effect"}
    data = {k: v for k, v in current.items() if k not in keep}
    data["status_history"] = [*(data.get("status_history") or []), {"status": status, "date": on}]
    return save_project(
        engine,
        data,
        json.loads(geometry),
        crs=f"EPSG:{srid}",
        srid=srid,
        user=user,
        project_id=project_id,
        may_change_any=may_change_any,
    )


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
            text(f"SELECT count(*) FROM ({STATE_SQL}) s WHERE change <> 'delete'"), params
        ).scalar_one()
        rows = conn.execute(
            text(
                f"SELECT * FROM ({STATE_SQL}) s WHERE change <> 'delete' ORDER BY id "
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
