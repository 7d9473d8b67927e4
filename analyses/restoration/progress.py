"""Progress towards Target 2 (30 % by 2030) and the national 15 %: one region or polygon on a
day, and the yearly series."""

from __future__ import annotations

import csv
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Engine, text

from analyses.restoration.measure import (
    Region,
    counting_statuses,
    measure_areas,
    measure_regions,
)
from layers.catalog import active_versions

TARGETS_CSV = files("analyses") / "targets.csv"


@cache
def targets() -> list[dict[str, Any]]:
    """Targets as data: share of the degraded baseline and the year, with the source."""
    with TARGETS_CSV.open(encoding="utf-8") as fh:
        return [
            {**r, "share": float(r["share"]), "year": int(r["year"])} for r in csv.DictReader(fh)
        ]


def _years_before(day: date, years: int) -> date:
    """The same day ``years`` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


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
    dates = [as_of, _years_before(as_of, 3)]
    measured = measure_areas(engine, region=region, ecosystem=ecosystem, dates=dates, area=area)
    return _progress_of(measured, as_of)


def progress_of_regions(
    engine: Engine, codes: list[str], kind: str, *, as_of: date | None = None
) -> list[dict[str, Any]]:
    """:func:`progress` of several kommuner (or fylker) measured in one pass: each region's
    figures are those :func:`progress` gives it alone."""
    as_of = as_of or date.today()
    areas = region_areas(engine, codes, kind, as_of=as_of)
    return [progress_from_areas(areas[c], as_of) for c in codes]


AREAS = ("baseline_ha", "restored_ha", "restored_3y_before_ha", "outside_ha")


def region_areas(
    engine: Engine,
    codes: list[str],
    kind: str,
    *,
    as_of: date,
    cell: tuple[int, int, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """The hectares progress is made of, per region (a national run's task): they add up
    over the grid cells of a region (``cell`` = column, row, size in metres)."""
    dates = [as_of, _years_before(as_of, 3)]
    regions = [Region(c, kind) for c in codes]
    measured = measure_regions(engine, regions, ecosystem=None, dates=dates, cell=cell)
    return {m.code: _areas_of(m, as_of) for m in measured}


def _areas_of(measured: Any, as_of: date) -> dict[str, Any]:
    code, areas = measured.code, measured.areas
    return {
        "region": measured.region.code,
        "region_kind": measured.region.kind,
        "ecosystem": measured.ecosystem,
        "baseline_ha": areas.baseline.get(code, 0.0),
        "restored_ha": areas.restored.get((code, as_of), 0.0),
        "restored_3y_before_ha": areas.restored.get((code, _years_before(as_of, 3)), 0.0),
        "outside_ha": areas.outside.get((code, as_of), 0.0),
        "coverage": areas.coverage,
        "degraded": measured.degraded,
        "boundaries": measured.boundaries,
    }


def _progress_of(measured: Any, as_of: date) -> dict[str, Any]:
    return progress_from_areas(_areas_of(measured, as_of), as_of)


def progress_from_areas(found: dict[str, Any], as_of: date) -> dict[str, Any]:
    """The targets' arithmetic on one region's measured hectares (:func:`region_areas`)."""
    baseline, restored = found["baseline_ha"], found["restored_ha"]
    outside, restored_then = found["outside_ha"], found["restored_3y_before_ha"]
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
        "region": found["region"],
        "region_kind": found["region_kind"],
        "ecosystem": found["ecosystem"],
        "as_of": as_of.isoformat(),
        "baseline_degraded_ha": round(baseline, 4),
        "under_restoration_ha": round(restored, 4),
        "share": round(share, 6),
        "restoration_outside_baseline_ha": round(outside, 4),
        "pace_last_3_years_ha_per_year": round(pace_3y, 4),
        "targets": goals,
        "provenance": {
            "degraded_area_versions": found["degraded"],
            "boundary_versions": found["boundaries"],
            "counting_statuses": counting_statuses(),
            "baseline_method": "sum of areas (baseline checked free of overlaps)"
            if found["coverage"]
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
        eco: measure_areas(engine, region=region, ecosystem=eco, dates=dates) for eco in ecosystems
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
