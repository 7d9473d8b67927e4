"""Arealregnskap: the land account of a land-use plan, with carbon.

Built as the guide *Arealregnskap i kommuneplan* [kdd-2023-arealregnskap] lays the account
out: the **status** (area per arealformål and land quality), the **arealreserve** (land zoned
for building that is not built yet, what it holds and what building it would release) and the
**change** between the plan in force and a proposed one (land moved into and out of building
zones, per land quality, with the net carbon effect). Every zone and every changed piece goes
through the proposal's own valuation (:mod:`analyses.assessment`), so a reserve's tonnes are
exactly those of a proposal drawn on the same polygon.

Land quality comes from AR5 (forest by bonitet), nature types by their DN13 value or
lokalitetskvalitet, protected areas by overlap. Land that no land-cover layer covers, and
land outside every nature-type layer, are reported as *not mapped*, apart from "mapped,
nothing found".
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import Connection, Engine, text

from analyses.assessment.arithmetic import ALREADY_BUILT, LandClass, default_built_share
from analyses.assessment.overlay import Site, SiteLand, chunked, read_ahead
from analyses.assessment.valuation import value_site
from analyses.factors import FactorTable, active_table
from analyses.plans import building_codes, plan_version
from analyses.presets import DEFAULT_PRESET, PeatHandling, Preset, excavated_share, stored_preset
from core import __version__
from core.bibliography import citations
from core.errors import InvalidInput
from layers import codelists
from layers.catalog import active_by_kind, version_id_of

GUIDE = "[kdd-2023-arealregnskap]"
# Land qualities in the order the tables show them.
QUALITIES = (
    "bebygd",
    "fulldyrka",
    "overflatedyrka",
    "innmarksbeite",
    "skog_hoy",
    "skog_middels",
    "skog_lav",
    "skog_ukjent",
    "apen_fastmark",
    "myr",
    "sno_is",
    "ferskvann",
    "hav",
    "ikke_klassifisert",
    "uten_arealdekke",
)
_BY_AREALTYPE = {
    11: "bebygd",
    12: "bebygd",
    21: "fulldyrka",
    22: "overflatedyrka",
    23: "innmarksbeite",
    50: "apen_fastmark",
    60: "myr",
    70: "sno_is",
    81: "ferskvann",
    82: "hav",
}
# AR5 skogbonitet: 15 særs høy, 14 høy, 13 middels, 12 lav, 11 impediment
_FOREST_BY_BONITET = {
    15: "skog_hoy",
    14: "skog_hoy",
    13: "skog_middels",
    12: "skog_lav",
    11: "skog_lav",
}
MIN_PIECE_M2 = 1.0  # slivers from redrawn boundaries are not land moved
ProgressFn = Callable[[int, int], None]


def land_quality(c: LandClass) -> str:
    """The account's land quality of one AR5 class."""
    if c.arealtype == 30:
        return _FOREST_BY_BONITET.get(c.skogbonitet or 0, "skog_ukjent")
    return _BY_AREALTYPE.get(c.arealtype or 0, "ikke_klassifisert")


def nature_value(attrs: dict[str, Any]) -> str:
    """A nature type's value for the account: its KU value (impact-assessment category) when
    given, else the DN13 value (A/B/C), else its lokalitetskvalitet."""
    if attrs.get("ku_verdi"):
        return f"KU {attrs['ku_verdi']}"
    if attrs.get("verdi"):
        return f"DN13 {str(attrs['verdi']).upper()}"
    if attrs.get("lokalitetskvalitet"):
        return f"kvalitet {attrs['lokalitetskvalitet']}"
    return "uten verdi"


@dataclass(frozen=True)
class Zone:
    """One arealformål area of a plan version."""

    fid: int
    code: int
    name: str | None
    wkb: bytes
    area_m2: float
    dwellings_per_daa: float | None = None  # the zone's own density, when the plan gives it


def zones_of(conn: Connection, version_id: int, fids: list[int] | None = None) -> list[Zone]:
    """The zones of a plan version (only ``fids`` when given: a national run's partition)."""
    rows = conn.execute(
        text(
            "SELECT fid, (attrs->>'arealformal')::int AS code, "
            "coalesce(attrs->>'feltnavn', attrs->>'plan_name') AS name, "
            "(attrs->>'boliger_per_daa')::float AS density, "
            "ST_AsBinary(geom) AS wkb, ST_Area(geom) AS area_m2 FROM geoservice.feature "
            "WHERE version_id = :v AND attrs ? 'arealformal' "
            "AND (CAST(:fids AS integer[]) IS NULL OR fid = ANY(:fids)) ORDER BY fid"
        ),
        {"v": version_id, "fids": fids},
    ).all()
    return [
        Zone(int(r.fid), int(r.code), r.name, bytes(r.wkb), float(r.area_m2), r.density)
        for r in rows
    ]


def _plan(conn: Connection, layer_id: int, version: int | None) -> dict[str, Any]:
    """A plan layer (checked as plan analysis checks it) at the asked or active version."""
    row = plan_version(conn, layer_id)
    version_id = version_id_of(conn, layer_id, version)
    number = conn.execute(
        text("SELECT version FROM geoservice.layer_version WHERE id = :v"), {"v": version_id}
    ).scalar_one()
    return {"layer_id": layer_id, "name": row["name"], "version_id": version_id, "version": number}


def nature_extent(conn: Connection) -> Any:
    """Where nature types were looked for: the union of the active layers' extents (areas
    outside it are not mapped, which is not the same as mapped with nothing found)."""
    boxes = conn.execute(
        text(
            "SELECT ST_AsBinary(v.bbox) FROM geoservice.layer l JOIN geoservice.layer_version v "
            "ON v.id = l.active_version_id WHERE l.kind = 'nature_types' AND v.bbox IS NOT NULL"
        )
    ).scalars()
    shapes = [shapely.from_wkb(bytes(b)) for b in boxes]
    return shapely.union_all(shapes) if shapes else None


def _daa(m2: float) -> float:
    return round(m2 / 1000, 4)


def _composition(sl: SiteLand, extent: Any) -> dict[str, Any]:
    """Land qualities, nature values and protected area inside one site (m²)."""
    land: dict[str, float] = defaultdict(float)
    for c in sl.land:
        land[land_quality(c)] += c.area_m2
    covered = sum(c.area_m2 for c in sl.land)
    if sl.site.area_m2 - covered > 0.01:  # rounding is not land without land cover
        land["uten_arealdekke"] += sl.site.area_m2 - covered
    nature: dict[str, float] = defaultdict(float)
    for found in sl.nature_types:
        nature[nature_value(found["attrs"])] += found["area_m2"]
    shape = shapely.from_wkb(sl.site.wkb)
    mapped = shape.intersection(extent).area if extent is not None else 0.0
    return {
        "land": dict(land),
        "nature": dict(nature),
        "nature_unmapped_m2": max(sl.site.area_m2 - mapped, 0.0),
        "protected_m2": sum(p["area_m2"] for p in sl.protected_areas),
        "built_m2": sum(c.area_m2 for c in sl.land if c.arealtype in ALREADY_BUILT),
    }


def _in_daa(values: dict[str, float]) -> dict[str, float]:
    return {k: _daa(v) for k, v in sorted(values.items()) if v > 0}


def _central(valued: dict[str, Any], key: str) -> float:
    return float(valued[key].get("central", 0.0))


def _carbon(valued: dict[str, Any]) -> dict[str, Any]:
    """The carbon figures of a valuation the account shows."""
    return {
        "stock_t_c": valued["stock_t_c"],
        "emission_t_co2e": valued["emission_t_co2e"],
        "forgone_sequestration_t_co2": valued["forgone_sequestration_t_co2"],
        "carbon_rich_daa": valued["flags"]["carbon_rich_daa"],
        "nature_types": len(valued["flags"]["nature_types"]),
    }


class _Valuer:
    """Reads and values sites in chunks, reporting progress over the whole account."""

    def __init__(
        self,
        engine: Engine,
        srid: int,
        table: FactorTable,
        preset: Preset,
        excavated: float,
        progress: ProgressFn | None,
        total: int,
    ) -> None:
        self.engine, self.srid, self.table = engine, srid, table
        self.preset, self.excavated = preset, excavated
        self.progress, self.total, self.done = progress, total, 0
        self.land_cover: dict[int, dict[str, Any]] = {}

    def read(self, sites: list[Site]) -> dict[int, SiteLand]:
        out: dict[int, SiteLand] = {}
        for lands in read_ahead(self.engine, chunked(sites), self.srid, self.table):
            out.update(lands)
            for sl in lands.values():
                if sl.land_cover is not None:
                    self.land_cover[int(sl.land_cover["version_id"])] = sl.land_cover
            self.done += len(lands)
            if self.progress:
                self.progress(self.done, self.total)
        return out

    def value(self, sl: SiteLand, code: int, label: str) -> dict[str, Any]:
        built, _ = default_built_share(code)
        return value_site(
            sl,
            label,
            built=built,
            preset=self.preset,
            excavated=self.excavated,
            table=self.table,
            require_land_cover=False,
        )


def _status(zones: list[Zone], comps: dict[int, dict[str, Any]]) -> dict[str, Any]:
    formal = codelists.load("arealformal")
    rows: dict[int, dict[str, Any]] = {}
    for z in zones:
        comp = comps[z.fid]
        row = rows.setdefault(
            z.code,
            {
                "arealformal": z.code,
                "name": formal.label(z.code) if z.code in formal else str(z.code),
                "building_zone": formal.rows[z.code]["building_zone"] if z.code in formal else "",
                "zones": 0,
                "area_m2": 0.0,
                "land": defaultdict(float),
                "nature": defaultdict(float),
                "nature_unmapped_m2": 0.0,
                "protected_m2": 0.0,
            },
        )
        row["zones"] += 1
        row["area_m2"] += z.area_m2
        for key in ("land", "nature"):
            for k, v in comp[key].items():
                row[key][k] += v
        row["nature_unmapped_m2"] += comp["nature_unmapped_m2"]
        row["protected_m2"] += comp["protected_m2"]
    table = [_status_row(r) for _, r in sorted(rows.items())]
    total = _status_row(
        {
            "arealformal": None,
            "name": "Sum",
            "building_zone": "",
            "zones": sum(r["zones"] for r in rows.values()),
            "area_m2": sum(r["area_m2"] for r in rows.values()),
            "land": _summed(r["land"] for r in rows.values()),
            "nature": _summed(r["nature"] for r in rows.values()),
            "nature_unmapped_m2": sum(r["nature_unmapped_m2"] for r in rows.values()),
            "protected_m2": sum(r["protected_m2"] for r in rows.values()),
        }
    )
    return {"rows": table, "total": total}


def _summed(parts: Any) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for part in parts:
        for k, v in part.items():
            out[k] += v
    return out


def _status_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "arealformal": r["arealformal"],
        "name": r["name"],
        "building_zone": r["building_zone"],
        "zones": r["zones"],
        "area_daa": _daa(r["area_m2"]),
        "land_daa": _in_daa(r["land"]),
        "nature_daa": _in_daa(r["nature"]),
        "nature_unmapped_daa": _daa(r["nature_unmapped_m2"]),
        "protected_daa": _daa(r["protected_m2"]),
    }


def _reserve(
    zones: list[Zone],
    lands: dict[int, SiteLand],
    comps: dict[int, dict[str, Any]],
    valuer: _Valuer,
    dwellings_per_daa: dict[int, float],
) -> dict[str, Any]:
    building = set(building_codes())
    formal = codelists.load("arealformal")
    entries: list[dict[str, Any]] = []
    for z in zones:
        if z.code not in building:
            continue
        comp = comps[z.fid]
        reserve_m2 = max(z.area_m2 - comp["built_m2"], 0.0)
        if reserve_m2 < MIN_PIECE_M2:
            continue
        valued = valuer.value(lands[z.fid], z.code, z.name or f"sone {z.fid}")
        unbuilt = {k: v for k, v in comp["land"].items() if k != "bebygd"}
        entry = {
            "fid": z.fid,
            "name": z.name,
            "arealformal": z.code,
            "arealformal_name": formal.label(z.code) if z.code in formal else str(z.code),
            "area_daa": _daa(z.area_m2),
            "built_daa": _daa(comp["built_m2"]),
            "reserve_daa": _daa(reserve_m2),
            "land_daa": _in_daa(unbuilt),
            "nature_daa": _in_daa(comp["nature"]),
            "protected_daa": _daa(comp["protected_m2"]),
            **_carbon(valued),
        }
        density = z.dwellings_per_daa or dwellings_per_daa.get(z.code)
        if density:
            dwellings = reserve_m2 / 1000 * density
            entry["dwellings"] = round(dwellings, 1)
            entry["emission_per_dwelling_t_co2e"] = (
                round(_central(valued, "emission_t_co2e") / dwellings, 2) if dwellings else None
            )
        entries.append(entry)
    entries.sort(key=lambda e: (-_central(e, "emission_t_co2e"), e["fid"]))
    per_code: dict[int, dict[str, Any]] = {}
    for e in entries:
        t = per_code.setdefault(
            e["arealformal"],
            {
                "arealformal": e["arealformal"],
                "name": e["arealformal_name"],
                "zones": 0,
                "reserve_daa": 0.0,
                "land_daa": defaultdict(float),
                "emission_t_co2e": 0.0,
                "stock_t_c": 0.0,
                "forgone_sequestration_t_co2": 0.0,
                "carbon_rich_daa": 0.0,
            },
        )
        t["zones"] += 1
        t["reserve_daa"] += e["reserve_daa"]
        for k, v in e["land_daa"].items():
            t["land_daa"][k] += v
        t["emission_t_co2e"] += _central(e, "emission_t_co2e")
        t["stock_t_c"] += _central(e, "stock_t_c")
        t["forgone_sequestration_t_co2"] += e["forgone_sequestration_t_co2"]
        t["carbon_rich_daa"] += e["carbon_rich_daa"]
    per = [
        {
            **t,
            "reserve_daa": round(t["reserve_daa"], 4),
            "land_daa": {k: round(v, 4) for k, v in sorted(t["land_daa"].items())},
            "emission_t_co2e": round(t["emission_t_co2e"], 2),
            "stock_t_c": round(t["stock_t_c"], 2),
            "forgone_sequestration_t_co2": round(t["forgone_sequestration_t_co2"], 2),
            "carbon_rich_daa": round(t["carbon_rich_daa"], 4),
        }
        for _, t in sorted(per_code.items())
    ]
    return {
        "zones": entries,
        "per_arealformal": per,
        "total": {
            "zones": len(entries),
            "reserve_daa": round(sum(e["reserve_daa"] for e in entries), 4),
            "emission_t_co2e": round(sum(_central(e, "emission_t_co2e") for e in entries), 2),
            "stock_t_c": round(sum(_central(e, "stock_t_c") for e in entries), 2),
            "dwellings": round(sum(e.get("dwellings", 0.0) for e in entries), 1),
        },
    }


_PIECES_SQL = """
WITH a AS (SELECT fid, (attrs->>'arealformal')::int AS code, geom FROM geoservice.feature
            WHERE version_id = :a AND attrs ? 'arealformal'),
     b AS (SELECT fid, (attrs->>'arealformal')::int AS code, geom FROM geoservice.feature
            WHERE version_id = :b AND attrs ? 'arealformal'),
pieces AS (
    SELECT a.fid, a.code, b.fid AS other_fid, b.code AS other_code,
           ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS g
      FROM a JOIN b ON a.geom && b.geom AND ST_Intersects(a.geom, b.geom)
     WHERE a.code = ANY(:building) AND NOT b.code = ANY(:building)
    UNION ALL
    SELECT a.fid, a.code, NULL, NULL,
           ST_CollectionExtract(ST_Difference(a.geom, coalesce(
               (SELECT ST_Union(b.geom) FROM b WHERE b.geom && a.geom),
               'GEOMETRYCOLLECTION EMPTY'::geometry)), 3)
      FROM a WHERE a.code = ANY(:building))
SELECT fid, code, other_fid, other_code, ST_AsBinary(ST_Multi(g)) AS wkb, ST_Area(g) AS area_m2,
       ST_AsGeoJSON(ST_Transform(g, 4326), 6) AS geojson
  FROM pieces WHERE ST_Area(g) >= :min ORDER BY fid, other_fid NULLS LAST
"""


def _per_code(conn: Connection, new: int, old: int) -> list[dict[str, Any]]:
    """Area per arealformål in the plan in force and in the new one, and the difference (the
    guide's table of the difference between the plans)."""
    rows = conn.execute(
        text(
            "SELECT (attrs->>'arealformal')::int AS code, "
            "sum(ST_Area(geom)) FILTER (WHERE version_id = :old) AS old_m2, "
            "sum(ST_Area(geom)) FILTER (WHERE version_id = :new) AS new_m2 "
            "FROM geoservice.feature WHERE version_id IN (:old, :new) "
            "AND attrs ? 'arealformal' GROUP BY 1 ORDER BY 1"
        ),
        {"old": old, "new": new},
    ).all()
    formal = codelists.load("arealformal")
    return [
        {
            "arealformal": int(r.code),
            "name": formal.label(int(r.code)) if int(r.code) in formal else str(r.code),
            "in_force_daa": _daa(float(r.old_m2 or 0.0)),
            "proposed_daa": _daa(float(r.new_m2 or 0.0)),
            "difference_daa": _daa(float(r.new_m2 or 0.0) - float(r.old_m2 or 0.0)),
        }
        for r in rows
    ]


def _pieces(conn: Connection, a: int, b: int, building: list[int]) -> list[Any]:
    """Parts of plan ``a``'s building zones that are not building zones in plan ``b``: where
    ``b`` has another arealformål (with its code) or no zone at all."""
    return list(
        conn.execute(
            text(_PIECES_SQL), {"a": a, "b": b, "building": building, "min": MIN_PIECE_M2}
        ).all()
    )


def returned_to(code: int | None) -> str:
    """What land leaving a building zone becomes in the new plan."""
    if code is None:
        return "ikke_regulert"
    if 5000 <= code < 6000:
        return "lnfr"
    if 3000 <= code < 4000:
        return "gronnstruktur"
    if 6000 <= code < 7000:
        return "sjo_vassdrag"
    return "annet"


def _change(
    conn_pieces: tuple[list[Any], list[Any]],
    valuer: _Valuer,
    extent: Any,
    plans: tuple[dict[str, Any], dict[str, Any]],
) -> dict[str, Any]:
    into_rows, out_rows = conn_pieces
    sites = [Site(i, bytes(r.wkb), float(r.area_m2)) for i, r in enumerate(into_rows)]
    offset = len(sites)
    sites += [Site(offset + i, bytes(r.wkb), float(r.area_m2)) for i, r in enumerate(out_rows)]
    lands = valuer.read(sites)
    per_quality: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    into: list[dict[str, Any]] = []
    for i, r in enumerate(into_rows):
        sl = lands[i]
        comp = _composition(sl, extent)
        valued = valuer.value(sl, int(r.code), f"ny sone {r.fid}")
        for k, v in comp["land"].items():
            per_quality[k]["into_m2"] += v
        into.append(
            {
                "fid": int(r.fid),
                "arealformal": int(r.code),
                "was_fid": r.other_fid,
                "was_arealformal": r.other_code,
                "area_daa": _daa(float(r.area_m2)),
                "land_daa": _in_daa(comp["land"]),
                "nature_daa": _in_daa(comp["nature"]),
                "protected_daa": _daa(comp["protected_m2"]),
                **_carbon(valued),
                "flagged": valued["flags"]["carbon_rich_daa"] > 0
                or bool(valued["flags"]["nature_types"])
                or bool(valued["flags"]["protected_areas"]),
                "geometry": json.loads(r.geojson),
            }
        )
    out: list[dict[str, Any]] = []
    for i, r in enumerate(out_rows):
        sl = lands[offset + i]
        comp = _composition(sl, extent)
        valued = valuer.value(sl, int(r.code), f"tidligere sone {r.fid}")
        for k, v in comp["land"].items():
            per_quality[k]["out_m2"] += v
        out.append(
            {
                "was_fid": int(r.fid),
                "was_arealformal": int(r.code),
                "fid": r.other_fid,
                "arealformal": r.other_code,
                "returned_to": returned_to(r.other_code),
                "area_daa": _daa(float(r.area_m2)),
                "land_daa": _in_daa(comp["land"]),
                "nature_daa": _in_daa(comp["nature"]),
                **_carbon(valued),
                "geometry": json.loads(r.geojson),
            }
        )
    into_t = sum(_central(p, "emission_t_co2e") for p in into)
    out_t = sum(_central(p, "emission_t_co2e") for p in out)
    returned: dict[str, float] = defaultdict(float)
    for p in out:
        returned[p["returned_to"]] += p["area_daa"]
    return {
        "from_plan": plans[0],
        "to_plan": plans[1],
        "into_building": into,
        "out_of_building": out,
        "per_quality": {
            q: {
                "into_daa": _daa(per_quality[q]["into_m2"]),
                "out_daa": _daa(per_quality[q]["out_m2"]),
                "net_daa": _daa(per_quality[q]["into_m2"] - per_quality[q]["out_m2"]),
            }
            for q in QUALITIES
            if q in per_quality
        },
        "returned_daa": {k: round(v, 4) for k, v in sorted(returned.items())},
        "into_daa": round(sum(p["area_daa"] for p in into), 4),
        "out_daa": round(sum(p["area_daa"] for p in out), 4),
        "into_emission_t_co2e": round(into_t, 2),
        "avoided_emission_t_co2e": round(out_t, 2),
        "net_emission_t_co2e": round(into_t - out_t, 2),
        "flagged": [p["fid"] for p in into if p["flagged"]],
    }


def check_plans(
    engine: Engine,
    layer_id: int,
    version: int | None,
    compare_layer_id: int | None,
    compare_version: int | None,
) -> None:
    """Refuse a missing or non-plan layer or version before an account is queued."""
    with engine.connect() as conn:
        plan = _plan(conn, layer_id, version)
        if compare_layer_id is not None:
            compared = _plan(conn, compare_layer_id, compare_version)
            if compared["version_id"] == plan["version_id"]:
                raise InvalidInput(
                    "The plan is compared with itself; name the plan in force with "
                    "compare_layer_id (and compare_version for an older version).",
                    code="same_plan",
                )


def land_account(
    engine: Engine,
    layer_id: int,
    *,
    version: int | None = None,
    compare_layer_id: int | None = None,
    compare_version: int | None = None,
    preset_name: str = DEFAULT_PRESET,
    peat_handling: PeatHandling = "drained",
    peat_excavated_share: float | None = None,
    dwellings_per_daa: dict[int, float] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Status and reserve of a plan version, and with ``compare_layer_id`` (the plan in
    force, or another version of the same layer) the change from it to this one."""
    preset = stored_preset(engine, preset_name)
    try:
        excavated = excavated_share(peat_handling, peat_excavated_share)
    except ValueError as exc:
        raise InvalidInput(f"{exc}.", code="bad_peat_excavated_share") from exc
    table = active_table(engine)
    building = building_codes()
    with engine.connect() as conn:
        plan = _plan(conn, layer_id, version)
        zones = zones_of(conn, plan["version_id"])
        if not zones:
            raise InvalidInput(
                f"Layer {layer_id} version {plan['version']} has no zones with an arealformål.",
                code="empty_plan",
            )
        srid = srid_of(conn, plan["version_id"])
        extent = nature_extent(conn)
        pieces: tuple[list[Any], list[Any]] | None = None
        compared: dict[str, Any] | None = None
        if compare_layer_id is not None:
            compared = _plan(conn, compare_layer_id, compare_version)
            if compared["version_id"] == plan["version_id"]:
                raise InvalidInput(
                    "The plan is compared with itself; name the plan in force with "
                    "compare_layer_id (and compare_version for an older version).",
                    code="same_plan",
                )
            pieces = (
                _pieces(conn, plan["version_id"], compared["version_id"], building),
                _pieces(conn, compared["version_id"], plan["version_id"], building),
            )
            per_code = _per_code(conn, plan["version_id"], compared["version_id"])
    total = len(zones) + (len(pieces[0]) + len(pieces[1]) if pieces else 0)
    valuer = _Valuer(engine, srid, table, preset, excavated, progress, total)
    lands = valuer.read([Site(z.fid, z.wkb, z.area_m2) for z in zones])
    comps = {z.fid: _composition(lands[z.fid], extent) for z in zones}
    if valuer.land_cover == {} and zones:
        raise InvalidInput(
            "No land-cover layer covers this plan; upload land cover (AR5 or N50) first.",
            code="no_land_cover",
        )
    result: dict[str, Any] = {
        "plan": plan,
        "status": _status(zones, comps),
        "reserve": _reserve(zones, lands, comps, valuer, dwellings_per_daa or {}),
        "change": None,
    }
    if pieces is not None and compared is not None:
        result["change"] = {
            **_change(pieces, valuer, extent, (compared, plan)),
            "per_arealformal": per_code,
        }
    with engine.connect() as conn:
        active = active_by_kind(conn)
    result["provenance"] = {
        "plan_layer": plan,
        "compared_plan_layer": compared,
        "land_cover_layers": sorted(valuer.land_cover.values(), key=lambda v: v["version_id"]),
        "nature_type_layers": [_layer(v) for v in active.get("nature_types", [])],
        "protected_area_layers": [_layer(v) for v in active.get("protected_areas", [])],
        "factor_table": table.describe(),
        "preset": preset.describe(),
        "peat_handling": peat_handling,
        "peat_excavated_share": excavated,
        "min_piece_m2": MIN_PIECE_M2,
        "method": GUIDE,
        "sources": citations(GUIDE, preset.source, *(f.source for f in table.factors.values())),
        "software": f"geoservice {__version__}",
    }
    return result


def reserve_of_zones(
    engine: Engine,
    zones: list[Zone],
    *,
    srid: int,
    table: FactorTable,
    preset: Preset,
    excavated: float,
    extent: Any,
    dwellings_per_daa: dict[int, float] | None = None,
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The arealreserve of some zones of a plan exactly as :func:`land_account` values it
    (a national run's partition), and the land-cover versions the valuation read."""
    valuer = _Valuer(engine, srid, table, preset, excavated, None, len(zones))
    lands = valuer.read([Site(z.fid, z.wkb, z.area_m2) for z in zones])
    comps = {z.fid: _composition(lands[z.fid], extent) for z in zones}
    reserve = _reserve(zones, lands, comps, valuer, dwellings_per_daa or {})
    return reserve, valuer.land_cover


def _layer(row: Any) -> dict[str, Any]:
    return {
        "layer_id": row.layer_id,
        "name": row.name,
        "version_id": row.version_id,
        "version": row.version,
    }


def srid_of(conn: Connection, version_id: int) -> int:
    """The storage SRID of a version's geometries (sites are read back in it)."""
    return int(
        conn.execute(
            text("SELECT ST_SRID(geom) FROM geoservice.feature WHERE version_id = :v LIMIT 1"),
            {"v": version_id},
        ).scalar_one()
    )
