"""Carbon assessment of a building proposal: what the land holds, what building would release.

The overlay runs in PostGIS on the active land-cover layer (GiST index, exact intersection
areas); the arithmetic per class happens here, where every number keeps its factor row, the
factor table version and the preset that produced it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from analyses.factors import (
    PEAT_CLASS_OFFSET,
    Factor,
    FactorTable,
    active_table,
    lucode_for,
)
from analyses.peat import PROBE_SEARCH_M, mire_depth, nina_density
from analyses.presets import (
    C_TO_CO2,
    DEFAULT_PRESET,
    DRAINED_PEAT_EF_T_C_HA_YR,
    FOREST_SINK_T_C_HA_YR,
    PeatHandling,
    Preset,
    stored_preset,
)
from analyses.raster_sums import coverage_sum
from core import __version__
from core.errors import InvalidInput, NotFound
from layers import codelists
from layers.catalog import active_versions, covering_version
from layers.crs import epsg_of, inside_norway, parse_crs

BUILT_SHARE_CSV = files("analyses") / "factors" / "built_share.csv"
KU_EMISSION_THRESHOLD_T_CO2E = 2000  # M-1941 §2.9
KU_CARBON_RICH_THRESHOLD_DAA = 5  # M-1941 §2.9
ALREADY_BUILT = (11, 12)  # conversion of built land defaults to zero emission (domain.md §1.3)
BUILDING_ZONE_SHARE = {
    "yes": (0.8, "building zone without a specific default [E]"),
    "partial": (0.3, "partly built zone without a specific default [E]"),
    "no": (0.01, "non-building zone without a specific default [E]"),
}
LEVELS = ("low", "central", "high")


@dataclass
class ProposalRequest:
    """What a planner sends: footprints (the proposal and named alternatives) and choices."""

    footprint: dict[str, Any]
    arealformal: int
    crs: str = "EPSG:4326"
    built_share: float | None = None
    preset: str = DEFAULT_PRESET
    peat_handling: PeatHandling = "excavated"
    name: str | None = None
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)


def footprint_geometries(geojson: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """The polygon geometries of a GeoJSON geometry, Feature or FeatureCollection."""
    kind = geojson.get("type") if isinstance(geojson, dict) else None
    if kind == "FeatureCollection":
        features = geojson.get("features") or []
        geoms = [g for f in features for g in footprint_geometries(f, label)]
    elif kind == "Feature":
        geoms = footprint_geometries(geojson.get("geometry") or {}, label)
    elif kind in ("Polygon", "MultiPolygon"):
        geoms = [geojson]
    else:
        raise InvalidInput(
            f"The {label} footprint must be a Polygon or MultiPolygon (as a GeoJSON geometry, "
            f"Feature or FeatureCollection); got {kind or 'nothing'}.",
            code="footprint_not_polygon",
        )
    if not geoms:
        raise InvalidInput(f"The {label} footprint has no geometry.", code="footprint_empty")
    return geoms


@cache
def _built_shares() -> dict[int, tuple[float, str]]:
    with BUILT_SHARE_CSV.open(encoding="utf-8") as fh:
        return {
            int(r["arealformal"]): (float(r["built_share"]), r["source"])
            for r in csv.DictReader(fh)
        }


def default_built_share(arealformal: int) -> tuple[float, str]:
    """Default utbyggingsandel: the code, then its parent codes, then the zone type."""
    shares = _built_shares()
    for parent in (
        arealformal,
        arealformal - arealformal % 10,
        arealformal - arealformal % 100,
        arealformal - arealformal % 1000,
    ):
        if parent in shares:
            share, source = shares[parent]
            return share, f"default for arealformål {parent}: {source}"
    zone = codelists.load("arealformal").rows[arealformal]["building_zone"]
    share, source = BUILDING_ZONE_SHARE[zone]
    return share, source


def prepare_footprint(
    conn: Connection, geoms: list[dict[str, Any]], srid_in: int, srid: int, label: str
) -> dict[str, Any]:
    """Union, reproject and repair the footprint in PostGIS; refuse it outside Norway."""
    try:
        row = conn.execute(
            text(
                """
                WITH raw AS (
                    SELECT ST_Union(ST_SetSRID(ST_GeomFromGeoJSON(g), :src)) AS g0
                      FROM unnest(CAST(:geoms AS text[])) AS g
                ), fixed AS (
                    SELECT ST_IsValid(g0) AS valid,
                           ST_Multi(ST_CollectionExtract(ST_MakeValid(
                               ST_Transform(g0, :srid)), 3)) AS g
                      FROM raw
                )
                SELECT valid, ST_AsBinary(g) AS wkb, ST_Area(g) AS area,
                       ST_X(ST_PointOnSurface(g)) AS x, ST_Y(ST_PointOnSurface(g)) AS y
                  FROM fixed
                """
            ),
            {
                "geoms": [json.dumps(g) for g in geoms],
                "src": srid_in,
                "srid": srid,
            },
        ).one()
    except DBAPIError as exc:
        raise InvalidInput(
            f"The {label} footprint could not be read as GeoJSON in EPSG:{srid_in}: "
            f"{str(exc.orig).splitlines()[0]}",
            code="bad_footprint",
        ) from exc
    if row.area is None or row.area <= 0:
        raise InvalidInput(f"The {label} footprint has no area.", code="footprint_empty")
    if row.x is None or not inside_norway([row.x], [row.y], srid)[0]:
        raise InvalidInput(
            f"The {label} footprint does not lie in Norway when read as EPSG:{srid_in}. "
            "GeoJSON is longitude/latitude (EPSG:4326) unless you say otherwise with crs.",
            code="outside_norway",
        )
    return {"wkb": bytes(row.wkb), "area_m2": float(row.area), "repaired": not row.valid}


def _land_cover_classes(
    conn: Connection, wkb: bytes, srid: int
) -> tuple[dict[str, Any] | None, list[Any]]:
    """Area per AR5 class (with bonitet and grunnforhold) inside the footprint.

    The land-cover layer is the one :func:`layers.catalog.covering_version` picks (the one
    rule every analysis uses); the overlay then reads that version only.
    """
    chosen = covering_version(conn, "land_cover", wkb, srid)
    if chosen is None:
        return None, []
    rows = conn.execute(
        text(
            """
            WITH fp AS (SELECT ST_GeomFromWKB(:wkb, :srid) AS g)
            SELECT (f.attrs->>'arealtype')::int AS arealtype,
                   (f.attrs->>'skogbonitet')::int AS skogbonitet,
                   (f.attrs->>'grunnforhold')::int AS grunnforhold,
                   sum(CASE WHEN ST_Within(f.geom, fp.g) THEN ST_Area(f.geom)
                            ELSE ST_Area(ST_Intersection(f.geom, fp.g)) END) AS area_m2
              FROM geoservice.feature f, fp
             WHERE f.version_id = ANY(:versions) AND ST_Intersects(f.geom, fp.g)
             GROUP BY 1, 2, 3
             ORDER BY 1, 2, 3
            """
        ),
        {"wkb": wkb, "srid": srid, "versions": [chosen.version_id]},
    ).all()
    if not rows:
        return None, []
    layer = {
        "layer_id": chosen.layer_id,
        "name": chosen.name,
        "version_id": chosen.version_id,
        "version": chosen.version,
    }
    return layer, list(rows)


def _peat_depth_areas(
    conn: Connection, version_id: int, wkb: bytes, srid: int, peat_versions: list[int]
) -> dict[str, float]:
    """Area of mire (AR5 60) in the footprint per depth class of the active peat layers.

    Mire polygons are intersected with the peat polygons one pair at a time (no union of the
    site's mire): peat polygons of one class are assumed not to overlap each other.
    """
    if not peat_versions:
        return {}
    rows = conn.execute(
        text(
            """
            WITH fp AS (SELECT ST_GeomFromWKB(:wkb, :srid) AS g)
            SELECT p.attrs->>'depth_class' AS depth_class,
                   sum(ST_Area(ST_Intersection(ST_Intersection(f.geom, fp.g), p.geom)))
                       AS area_m2
              FROM fp
              JOIN geoservice.feature f
                ON f.version_id = :v AND f.attrs->>'arealtype' = '60'
               AND ST_Intersects(f.geom, fp.g)
              JOIN geoservice.feature p
                ON p.version_id = ANY(:peat) AND p.attrs->>'depth_class' IN ('grunn', 'djup')
               AND ST_Dimension(p.geom) = 2 AND ST_Intersects(p.geom, f.geom)
               AND ST_Intersects(p.geom, fp.g)
             GROUP BY 1
            """
        ),
        {"wkb": wkb, "srid": srid, "v": version_id, "peat": peat_versions},
    ).all()
    return {r.depth_class: float(r.area_m2) for r in rows if r.area_m2 > 0}


@dataclass(frozen=True)
class LandClass:
    """One land class inside the footprint (mire split by depth class)."""

    arealtype: int | None
    skogbonitet: int | None
    grunnforhold: int | None
    area_m2: float
    peat_class: str | None = None


def split_peat(classes: list[Any], depths: dict[str, float]) -> list[LandClass]:
    """Land classes with mire split into the depth classes of the peat layers, rest unknown."""
    out: list[LandClass] = []
    for c in classes:
        if c.arealtype != 60:
            out.append(LandClass(c.arealtype, c.skogbonitet, c.grunnforhold, float(c.area_m2)))
            continue
        remaining = float(c.area_m2)
        for depth_class in ("djup", "grunn"):
            part = min(depths.get(depth_class, 0.0), remaining)
            if part > 0:
                out.append(LandClass(60, c.skogbonitet, c.grunnforhold, part, depth_class))
                remaining -= part
        if remaining > 1e-6:
            out.append(LandClass(60, c.skogbonitet, c.grunnforhold, remaining, "ukjent"))
    return out


MEASURED = "measured"


def _mire_land(
    conn: Connection, lc_version: int, wkb: bytes, srid: int, raw: list[Any], table: FactorTable
) -> tuple[list[LandClass], FactorTable, dict[str, Any] | None]:
    """Land classes with mire valued from measured depth when there is any, else depth classes.

    A depth raster or depth probes give the mean depth over the site's mire; the stock is then
    depth × the NINA carbon density (its quartiles give the range), in a derived row 6009.
    """
    if not any(c.arealtype == 60 for c in raw):
        return split_peat(raw, {}), table, None
    peat_versions = [v.version_id for v in active_versions(conn, "peat")]
    has_depth_data = bool(active_versions(conn, "peat_depth")) or bool(
        peat_versions
        and conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM geoservice.feature p "
                "WHERE p.version_id = ANY(:peat) AND p.attrs ? 'depth_cm' "
                "AND ST_DWithin(p.geom, ST_GeomFromWKB(:wkb, :srid), :r))"
            ),
            {"peat": peat_versions, "wkb": wkb, "srid": srid, "r": PROBE_SEARCH_M},
        ).scalar()
    )
    depth = None
    if has_depth_data:  # the site's mire as one geometry is only needed to sample depths
        mire_wkb = conn.execute(
            text(
                """
                SELECT ST_AsBinary(ST_Union(ST_Intersection(f.geom, ST_GeomFromWKB(:wkb, :srid))))
                  FROM geoservice.feature f
                 WHERE f.version_id = :v AND f.attrs->>'arealtype' = '60'
                   AND ST_Intersects(f.geom, ST_GeomFromWKB(:wkb, :srid))
                """
            ),
            {"wkb": wkb, "srid": srid, "v": lc_version},
        ).scalar()
        depth = mire_depth(conn, bytes(mire_wkb), srid) if mire_wkb else None
    if depth is None:
        depths = _peat_depth_areas(conn, lc_version, wkb, srid, peat_versions)
        return split_peat(raw, depths), table, None
    density = nina_density()
    base = table.factors.get(6000)
    central = density.t_c_per_ha_per_m("central")
    row = Factor(
        lucode=6000 + PEAT_CLASS_OFFSET[MEASURED],
        name=f"Myr, målt dybde {depth.mean_m:.2f} m",
        c_above=base.c_above if base else 0.0,
        c_below=base.c_below if base else 0.0,
        c_dead=base.c_dead if base else 0.0,
        c_soil=depth.mean_m * central,
        low_factor=density.t_c_per_ha_per_m("low") / central,
        high_factor=density.t_c_per_ha_per_m("high") / central,
        status="derived",
        source=f"mean peat depth {depth.mean_m:.2f} m from {depth.method} in {depth.source} "
        f"× carbon density {density.central_kg_m3:.1f} kg C/m³ (range "
        f"{density.low_kg_m3:.1f}–{density.high_kg_m3:.1f}; {density.source}); vegetation "
        "from the table's myr row",
    )
    measured = replace(table, factors={**table.factors, row.lucode: row})
    land = [
        LandClass(c.arealtype, c.skogbonitet, c.grunnforhold, float(c.area_m2))
        if c.arealtype != 60
        else LandClass(60, c.skogbonitet, c.grunnforhold, float(c.area_m2), MEASURED)
        for c in raw
    ]
    info = {
        "mean_m": round(depth.mean_m, 4),
        "method": depth.method,
        "source": depth.source,
        "density_kg_c_m3": round(density.central_kg_m3, 3),
    }
    return land, measured, info


def _overlaps(conn: Connection, wkb: bytes, srid: int, kind: str) -> list[dict[str, Any]]:
    """Features of active layers of ``kind`` that the footprint touches, with shared area."""
    layers = {v.version_id: v for v in active_versions(conn, kind)}
    if not layers:
        return []
    rows = conn.execute(
        text(
            """
            WITH fp AS (SELECT ST_GeomFromWKB(:wkb, :srid) AS g)
            SELECT f.version_id, f.fid, f.attrs, ST_Area(ST_Intersection(f.geom, fp.g)) AS area_m2
              FROM geoservice.feature f, fp
             WHERE f.version_id = ANY(:versions) AND ST_Intersects(f.geom, fp.g)
             ORDER BY area_m2 DESC
            """
        ),
        {"wkb": wkb, "srid": srid, "versions": list(layers)},
    ).all()
    return [
        {
            **dict(r._mapping),
            "layer": layers[r.version_id].name,
            "area_m2": round(float(r.area_m2), 2),
        }
        for r in rows
        if r.area_m2 > 0
    ]


def _levels(value: float, factor: Factor) -> dict[str, float]:
    return {"low": value * factor.low_factor, "central": value, "high": value * factor.high_factor}


def _add(total: dict[str, float], part: dict[str, float]) -> None:
    for level in LEVELS:
        total[level] = total.get(level, 0.0) + part[level]


def _rounded(values: dict[str, float], digits: int = 2) -> dict[str, float]:
    return {k: round(v, digits) for k, v in values.items()}


def _class_result(
    cls: LandClass, factor: Factor | None, built: float, preset: Preset, peat: PeatHandling
) -> dict[str, Any]:
    """Stock, loss and preserved carbon of one land class inside the footprint."""
    area_ha = float(cls.area_m2) / 10_000
    entry: dict[str, Any] = {
        "arealtype": cls.arealtype,
        "arealtype_name": codelists.load("ar5_arealtype").label(cls.arealtype)
        if cls.arealtype in codelists.load("ar5_arealtype").rows
        else None,
        "skogbonitet": cls.skogbonitet,
        "grunnforhold": cls.grunnforhold,
        "peat_depth_class": cls.peat_class,
        "area_m2": round(float(cls.area_m2), 2),
        "area_daa": round(area_ha * 10, 4),
        "area_ha": round(area_ha, 6),
    }
    if factor is None:
        entry["factor"] = None
        return entry
    pools = {p: getattr(factor, p) * area_ha for p in ("c_above", "c_below", "c_dead", "c_soil")}
    stock = {p: _levels(v, factor) for p, v in pools.items()}
    total_stock = {lvl: sum(stock[p][lvl] for p in stock) for lvl in LEVELS}
    built_ha = area_ha * built
    immediate_c = 0.0
    over_time_c = 0.0
    if factor.arealtype not in ALREADY_BUILT:
        immediate_c += (factor.c_above + factor.c_below + factor.c_dead) * built_ha
        if factor.arealtype == 60:
            if preset.peat_stock_method or peat == "excavated":
                immediate_c += factor.c_soil * built_ha
            else:
                years = preset.horizon_years or 20
                over_time_c += min(factor.c_soil, DRAINED_PEAT_EF_T_C_HA_YR * years) * built_ha
        else:
            lost = factor.c_soil * built_ha * preset.mineral_soil_loss
            if preset.mineral_soil_immediate:
                immediate_c += lost
            else:
                over_time_c += lost
    emission_c = immediate_c + over_time_c
    entry.update(
        {
            "factor": {
                "lucode": factor.lucode,
                "name": factor.name,
                "status": factor.status,
                "source": factor.source,
            },
            "stock_t_c": {p: _rounded(v) for p, v in stock.items()}
            | {"total": _rounded(total_stock)},
            "emission_t_co2": _rounded(
                {lvl: v * C_TO_CO2 for lvl, v in _levels(emission_c, factor).items()}
            ),
            "emission_immediate_t_co2": round(immediate_c * C_TO_CO2, 2),
            "emission_over_time_t_co2": round(over_time_c * C_TO_CO2, 2),
            "preserved_unbuilt_t_c": _rounded(
                {lvl: v * (1 - built) for lvl, v in total_stock.items()}
            ),
        }
    )
    return entry


def summarize(
    land: list[LandClass], built: float, preset: Preset, peat: PeatHandling, table: FactorTable
) -> dict[str, Any]:
    """Stocks, emissions, preserved carbon and flags of a set of land classes."""
    classes = []
    totals: dict[str, dict[str, float]] = {"stock": {}, "emission": {}, "preserved": {}}
    immediate = over_time = 0.0
    covered = no_factor = carbon_rich = forest_built_ha = 0.0
    for cls in land:
        covered += cls.area_m2
        code = (
            lucode_for(
                cls.arealtype, cls.skogbonitet, cls.grunnforhold, cls.peat_class, table.factors
            )
            if cls.arealtype is not None
            else None
        )
        factor = table.factors.get(code) if code is not None else None
        entry = _class_result(cls, factor, built, preset, peat)
        classes.append(entry)
        if factor is None:
            no_factor += cls.area_m2
            continue
        _add(totals["stock"], entry["stock_t_c"]["total"])
        _add(totals["emission"], entry["emission_t_co2"])
        _add(totals["preserved"], entry["preserved_unbuilt_t_c"])
        immediate += entry["emission_immediate_t_co2"]
        over_time += entry["emission_over_time_t_co2"]
        if cls.arealtype == 60 or (cls.arealtype == 30 and cls.skogbonitet in (14, 15)):
            carbon_rich += cls.area_m2
        if cls.arealtype == 30:
            forest_built_ha += cls.area_m2 / 10_000 * built
    horizon = preset.horizon_years or 20
    forgone = forest_built_ha * FOREST_SINK_T_C_HA_YR * horizon * C_TO_CO2
    emission_central = totals["emission"].get("central", 0.0)
    return {
        "covered_m2": covered,
        "no_factor_m2": round(no_factor, 2),
        "classes": classes,
        "stock_t_c": _rounded(totals["stock"]),
        "emission_t_co2e": _rounded(totals["emission"]),
        "emission_immediate_t_co2e": round(immediate, 2),
        "emission_over_time_t_co2e": round(over_time, 2),
        "horizon_years": preset.horizon_years,
        "preserved_unbuilt_t_c": _rounded(totals["preserved"]),
        "forgone_sequestration_t_co2": round(forgone, 2),
        "flags": {
            "over_2000_t_co2e": emission_central > KU_EMISSION_THRESHOLD_T_CO2E,
            "carbon_rich_daa": round(carbon_rich / 1000, 4),
            "over_5_daa_carbon_rich": carbon_rich / 1000 > KU_CARBON_RICH_THRESHOLD_DAA,
        },
    }


def _apply_carbon_raster(
    conn: Connection,
    wkb: bytes,
    srid: int,
    summary: dict[str, Any],
    built: float,
    preset: Preset,
) -> dict[str, Any] | None:
    """Where a carbon-density raster covers the site, its exact sum replaces the class values.

    The raster's pools replace the class-based stock on the share of the site it covers;
    biomass pools are lost with the built share at once, soil per the preset. Class rows keep
    their factor values; the footprint totals carry the replacement.
    """
    row = covering_version(conn, "carbon_density", wkb, srid)
    if row is None or row.storage_path is None:
        return None
    pools_json = conn.execute(
        text("SELECT raster->'pools' FROM geoservice.layer_version WHERE id = :v"),
        {"v": row.version_id},
    ).scalar()
    sums = coverage_sum(row.storage_path, wkb)
    if sums.covered_m2 <= 0:
        return None
    pools = list(pools_json or [])
    share = min(sums.covered_share, 1.0)
    class_pools = sum(
        (c.get("stock_t_c") or {}).get(p, {}).get("central", 0.0)
        for c in summary["classes"]
        for p in pools
    )
    replaced = class_pools * share
    delta_stock = sums.total - replaced
    soil_only = pools == ["c_soil"]
    loss_share = preset.mineral_soil_loss if soil_only else 1.0
    delta_emission = delta_stock * built * loss_share * C_TO_CO2
    for key, delta in (
        ("stock_t_c", delta_stock),
        ("emission_t_co2e", delta_emission),
        ("preserved_unbuilt_t_c", delta_stock * (1 - built)),
    ):
        summary[key] = {lvl: round(v + delta, 2) for lvl, v in summary[key].items()}
    immediate = not soil_only or preset.mineral_soil_immediate
    target = "emission_immediate_t_co2e" if immediate else "emission_over_time_t_co2e"
    summary[target] = round(summary[target] + delta_emission, 2)
    summary["flags"]["over_2000_t_co2e"] = (
        summary["emission_t_co2e"].get("central", 0.0) > KU_EMISSION_THRESHOLD_T_CO2E
    )
    return {
        "layer_id": row.layer_id,
        "name": row.name,
        "version_id": row.version_id,
        "version": row.version,
        "pools": pools,
        "covered_share": round(share, 6),
        "raster_t_c": round(sums.total, 4),
        "replaced_class_t_c": round(replaced, 4),
    }


def assess_footprint(
    conn: Connection,
    label: str,
    geoms: list[dict[str, Any]],
    *,
    srid_in: int,
    srid: int,
    built: float,
    preset: Preset,
    peat: PeatHandling,
    table: FactorTable,
) -> dict[str, Any]:
    """Everything the planner needs about one footprint."""
    fp = prepare_footprint(conn, geoms, srid_in, srid, label)
    lc, raw_classes = _land_cover_classes(conn, fp["wkb"], srid)
    if lc is None:
        raise InvalidInput(
            f"The {label} footprint lies outside every land-cover layer; upload land cover "
            "(AR5 or N50) for the area first.",
            code="no_land_cover",
        )
    land, table, depth = _mire_land(conn, lc["version_id"], fp["wkb"], srid, raw_classes, table)
    summary = summarize(land, built, preset, peat, table)
    covered = summary.pop("covered_m2")
    nature = _overlaps(conn, fp["wkb"], srid, "nature_types")
    protected = _overlaps(conn, fp["wkb"], srid, "protected_areas")
    raster = _apply_carbon_raster(conn, fp["wkb"], srid, summary, built, preset)
    summary["flags"]["nature_types"] = nature
    summary["flags"]["protected_areas"] = protected
    return {
        "name": label,
        "area_m2": round(fp["area_m2"], 2),
        "area_daa": round(fp["area_m2"] / 1000, 4),
        "area_ha": round(fp["area_m2"] / 10_000, 6),
        "footprint_repaired": fp["repaired"],
        "built_share": built,
        "no_land_cover_m2": round(max(fp["area_m2"] - covered, 0.0), 2),
        "no_land_cover_share": round(max(fp["area_m2"] - covered, 0.0) / fp["area_m2"], 6),
        **summary,
        "carbon_raster": raster,
        "peat_depth": depth,
        "land_cover_layer": lc,
    }


def assess(engine: Engine, request: ProposalRequest, *, storage_srid: int) -> dict[str, Any]:
    """Assess the proposal and its alternatives, store the result, return it with its id."""
    preset = stored_preset(engine, request.preset)
    if request.peat_handling not in ("excavated", "drained", "filled"):
        raise InvalidInput(
            "peat_handling must be excavated, drained or filled.", code="bad_peat_handling"
        )
    if request.arealformal not in codelists.load("arealformal").rows:
        raise InvalidInput(
            f"arealformål {request.arealformal} is not in the code list "
            "(e.g. 1110 boligbebyggelse, 1300 næring, 2010 veg).",
            code="unknown_arealformal",
        )
    if request.built_share is None:
        built, built_source = default_built_share(request.arealformal)
    elif 0 <= request.built_share <= 1:
        built, built_source = request.built_share, "given in the request"
    else:
        raise InvalidInput("built_share must be between 0 and 1.", code="bad_built_share")
    srid_in = epsg_of(parse_crs(request.crs), request.crs)
    footprints = {"proposal": footprint_geometries(request.footprint, "proposal")}
    for alt_name, alt in request.alternatives.items():
        footprints[alt_name] = footprint_geometries(alt, f"alternative {alt_name!r}")
    table = active_table(engine)
    with engine.begin() as conn:
        results = [
            assess_footprint(
                conn,
                label,
                geoms,
                srid_in=srid_in,
                srid=storage_srid,
                built=built,
                preset=preset,
                peat=request.peat_handling,
                table=table,
            )
            for label, geoms in footprints.items()
        ]
        ranking = sorted(results, key=lambda r: r["emission_t_co2e"].get("central", 0.0))
        best = ranking[0]
        comparison = [
            {
                "name": r["name"],
                "emission_t_co2e": r["emission_t_co2e"].get("central", 0.0),
                "more_than_least_t_co2e": round(
                    r["emission_t_co2e"].get("central", 0.0)
                    - best["emission_t_co2e"].get("central", 0.0),
                    2,
                ),
            }
            for r in ranking
        ]
        result = {
            "name": request.name,
            "arealformal": request.arealformal,
            "arealformal_name": codelists.load("arealformal").label(request.arealformal),
            "built_share": built,
            "built_share_source": built_source,
            "peat_handling": request.peat_handling,
            "footprints": results,
            "least_carbon_loss": best["name"],
            "comparison": comparison,
            "provenance": {
                "factor_table": table.describe(),
                "preset": preset.describe(),
                "land_cover_layers": [r["land_cover_layer"] for r in results],
                "carbon_rasters": [r["carbon_raster"] for r in results if r["carbon_raster"]],
                "other_layers": {
                    kind: [
                        {
                            "layer_id": v.layer_id,
                            "name": v.name,
                            "version_id": v.version_id,
                            "version": v.version,
                        }
                        for v in active_versions(conn, kind)
                    ]
                    for kind in (
                        "nature_types",
                        "protected_areas",
                        "peat",
                        "peat_depth",
                        "carbon_density",
                    )
                },
                "software": f"geoservice {__version__}",
                "notes": [
                    "Mire: a peat-depth raster, else peat depth probes (IDW) give the mean "
                    "depth × NINA carbon density; without them the depth classes of peat "
                    "layers (grunn/djup), else the unknown-depth factor (lucode 6000).",
                ],
            },
        }
        request_json = {
            "name": request.name,
            "crs": request.crs,
            "arealformal": request.arealformal,
            "built_share": request.built_share,
            "preset": request.preset,
            "peat_handling": request.peat_handling,
            "footprint": request.footprint,
            "alternatives": request.alternatives,
        }
        proposal_id = conn.execute(
            text(
                "INSERT INTO geoservice.proposal (name, request, result) "
                "VALUES (:n, CAST(:req AS jsonb), CAST(:res AS jsonb)) RETURNING id"
            ),
            {
                "n": request.name,
                "req": json.dumps(request_json),
                "res": json.dumps(result, default=str),
            },
        ).scalar_one()
    return {"id": int(proposal_id), **result}


@dataclass(frozen=True)
class StoredProposal:
    """A stored assessment: what was asked, what came out, and the footprints again."""

    id: int
    created_at: Any
    request: dict[str, Any]
    result: dict[str, Any]

    def footprints(self, conn: Connection, srid: int) -> list[tuple[str, bytes]]:
        """(name, WKB in ``srid``) of the proposal and its alternatives, as assessed."""
        srid_in = epsg_of(parse_crs(self.request["crs"]), self.request["crs"])
        shapes = [
            ("proposal", self.request["footprint"]),
            *self.request.get("alternatives", {}).items(),
        ]
        return [
            (
                name,
                prepare_footprint(conn, footprint_geometries(g, name), srid_in, srid, name)["wkb"],
            )
            for name, g in shapes
        ]


def load_proposal(conn: Connection, proposal_id: int) -> StoredProposal:
    """The stored assessment, or NotFound."""
    row = conn.execute(
        text("SELECT id, created_at, request, result FROM geoservice.proposal WHERE id = :id"),
        {"id": proposal_id},
    ).first()
    if row is None:
        raise NotFound(f"There is no proposal {proposal_id}.", code="proposal_not_found")
    return StoredProposal(row.id, row.created_at, row.request, row.result)


def get_proposal(engine: Engine, proposal_id: int) -> dict[str, Any]:
    """A stored assessment as the API returns it."""
    with engine.connect() as conn:
        stored = load_proposal(conn, proposal_id)
    return {"id": stored.id, "created_at": stored.created_at.isoformat(), **stored.result}
