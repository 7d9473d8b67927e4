"""What the land under a set of sites is: land-cover classes, mire with its peat depth, the
nature types and protected areas they touch, and a carbon raster's sum (overlays in PostGIS).

Every step takes any number of sites and asks PostGIS once for all of them, so that a plan's
thousand zones and a single proposal go through the same code: a proposal is a set of one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, text

from analyses.assessment.arithmetic import MEASURED, LandClass, split_peat
from analyses.factors import (
    PEAT_CLASS_OFFSET,
    Factor,
    FactorTable,
)
from analyses.peat import PROBE_SEARCH_M, mire_depths, nina_density
from analyses.raster_sums import CoverageSum, coverage_sums
from layers.catalog import active_by_kind, covering_versions


@dataclass(frozen=True)
class Site:
    """One footprint to value: a proposal, an alternative or a plan zone."""

    key: int
    wkb: bytes
    area_m2: float


@dataclass
class SiteLand:
    """Everything the arithmetic needs about one site, read from PostGIS."""

    site: Site
    land_cover: dict[str, Any] | None = None
    raw_classes: list[Any] = field(default_factory=list)
    land: list[LandClass] = field(default_factory=list)
    table: FactorTable | None = None
    peat_depth: dict[str, Any] | None = None
    nature_types: list[dict[str, Any]] = field(default_factory=list)
    protected_areas: list[dict[str, Any]] = field(default_factory=list)
    carbon_raster: tuple[Any, CoverageSum] | None = None


def _params(sites: list[Site], srid: int) -> dict[str, Any]:
    """Sites as arrays (key, WKB) that the queries unnest together."""
    return {"srid": srid, "keys": [s.key for s in sites], "wkbs": [s.wkb for s in sites]}


def _per_version(
    conn: Connection,
    query: str,
    sites: list[Site],
    versions: dict[int, int],
    srid: int,
    **values: Any,
) -> list[Any]:
    """Run ``query`` once per land-cover version for the sites on it: the version is then a
    constant, so PostgreSQL reads only that version's partition, through its spatial index."""
    groups: dict[int, list[Site]] = defaultdict(list)
    for site in sites:
        if site.key in versions:
            groups[versions[site.key]].append(site)
    rows: list[Any] = []
    for version, group in groups.items():
        rows += conn.execute(text(query), {**_params(group, srid), "v": version, **values}).all()
    return rows


def _land_cover(conn: Connection, lands: dict[int, SiteLand], srid: int) -> None:
    """Area per AR5 class (with bonitet and grunnforhold) inside each site, from the land-cover
    version :func:`layers.catalog.covering_versions` picks for that site."""
    chosen = covering_versions(
        conn, "land_cover", {k: sl.site.wkb for k, sl in lands.items()}, srid
    )
    sites = [lands[k].site for k in chosen]
    if not sites:
        return
    rows = _per_version(
        conn,
        """
            WITH s AS MATERIALIZED (
                SELECT k, ST_GeomFromWKB(w, :srid) AS g
                  FROM unnest(CAST(:keys AS bigint[]), CAST(:wkbs AS bytea[])) AS t(k, w))
            SELECT s.k,
                   (f.attrs->>'arealtype')::int AS arealtype,
                   (f.attrs->>'skogbonitet')::int AS skogbonitet,
                   (f.attrs->>'grunnforhold')::int AS grunnforhold,
                   sum(CASE WHEN ST_Within(f.geom, s.g) THEN ST_Area(f.geom)
                            ELSE ST_Area(ST_Intersection(f.geom, s.g)) END) AS area_m2
              FROM s JOIN geoservice.feature f
                ON f.version_id = :v AND ST_Intersects(f.geom, s.g)
             GROUP BY 1, 2, 3, 4
             ORDER BY 1, 2, 3, 4
        """,
        sites,
        {k: int(r.version_id) for k, r in chosen.items()},
        srid,
    )
    for r in rows:
        lands[int(r.k)].raw_classes.append(r)
    for k, row in chosen.items():
        if lands[k].raw_classes:
            lands[k].land_cover = {
                "layer_id": row.layer_id,
                "name": row.name,
                "version_id": row.version_id,
                "version": row.version,
            }


def _peat_depth_areas(
    conn: Connection, sites: list[Site], versions: dict[int, int], srid: int, peat: list[int]
) -> dict[int, dict[str, float]]:
    """Area of mire (AR5 60) in each site per depth class of the active peat layers.

    Mire polygons are intersected with the peat polygons one pair at a time (no union of a
    site's mire): peat polygons of one class are assumed not to overlap each other.
    """
    out: dict[int, dict[str, float]] = defaultdict(dict)
    if not peat or not sites:
        return out
    rows = _per_version(
        conn,
        """
            WITH s AS MATERIALIZED (
                SELECT k, ST_GeomFromWKB(w, :srid) AS g
                  FROM unnest(CAST(:keys AS bigint[]), CAST(:wkbs AS bytea[])) AS t(k, w))
            SELECT s.k, p.attrs->>'depth_class' AS depth_class,
                   sum(ST_Area(ST_Intersection(ST_Intersection(f.geom, s.g), p.geom)))
                       AS area_m2
              FROM s
              JOIN geoservice.feature f
                ON f.version_id = :v AND f.attrs->>'arealtype' = '60'
               AND ST_Intersects(f.geom, s.g)
              JOIN geoservice.feature p
                ON p.version_id = ANY(:peat) AND p.attrs->>'depth_class' IN ('grunn', 'djup')
               AND ST_Dimension(p.geom) = 2 AND ST_Intersects(p.geom, f.geom)
               AND ST_Intersects(p.geom, s.g)
             GROUP BY 1, 2
        """,
        sites,
        versions,
        srid,
        peat=peat,
    )
    for r in rows:
        if r.area_m2 > 0:
            out[int(r.k)][r.depth_class] = float(r.area_m2)
    return out


def _measured_row(table: FactorTable, depth: Any) -> Factor:
    """Mire valued from its measured mean depth × the NINA carbon density (range: quartiles)."""
    density = nina_density()
    base = table.factors.get(6000)
    central = density.t_c_per_ha_per_m("central")
    return Factor(
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
        "from the table's myr row [project-estimates]",
    )


def _mire(
    conn: Connection,
    lands: dict[int, SiteLand],
    srid: int,
    table: FactorTable,
    active: dict[str, list[Any]],
) -> None:
    """Mire valued from measured depth where a site has any, else from depth classes.

    A depth raster or depth probes give the mean depth over a site's mire; its stock is then
    depth × the NINA carbon density (quartiles for the range), in a derived row 6009.
    """
    for sl in lands.values():
        sl.table = table
    with_mire = [sl for sl in lands.values() if any(c.arealtype == 60 for c in sl.raw_classes)]
    mire_keys = {sl.site.key for sl in with_mire}
    for sl in lands.values():
        if sl.site.key not in mire_keys:
            sl.land = split_peat(sl.raw_classes, {})
    if not with_mire:
        return
    versions = {sl.site.key: int(sl.land_cover["version_id"]) for sl in with_mire if sl.land_cover}
    sites = [sl.site for sl in with_mire]
    peat = [v.version_id for v in active.get("peat", [])]
    has_raster = bool(active.get("peat_depth"))
    rows = _per_version(
        conn,
        """
            WITH s AS MATERIALIZED (
                SELECT k, ST_GeomFromWKB(w, :srid) AS g
                  FROM unnest(CAST(:keys AS bigint[]), CAST(:wkbs AS bytea[])) AS t(k, w)),
                 d AS (
                SELECT s.k, s.g,
                       (:raster OR EXISTS (
                            SELECT 1 FROM geoservice.feature p
                             WHERE p.version_id = ANY(:peat) AND p.attrs ? 'depth_cm'
                               AND ST_DWithin(p.geom, s.g, :r))) AS has_depth
                  FROM s)
            SELECT d.k,
                   CASE WHEN d.has_depth THEN (
                       SELECT ST_AsBinary(ST_Union(ST_Intersection(f.geom, d.g)))
                         FROM geoservice.feature f
                        WHERE f.version_id = :v AND f.attrs->>'arealtype' = '60'
                          AND ST_Intersects(f.geom, d.g)) END AS mire
              FROM d
        """,
        sites,
        versions,
        srid,
        peat=peat,
        raster=has_raster,
        r=PROBE_SEARCH_M,
    )
    # Measured depth where there is depth data near the site's mire; depth classes elsewhere.
    depths = mire_depths(
        conn, {int(r.k): bytes(r.mire) for r in rows if r.mire is not None}, srid, active
    )
    by_class = _peat_depth_areas(
        conn, [s for s in sites if depths.get(s.key) is None], versions, srid, peat
    )
    for sl in with_mire:
        key = sl.site.key
        depth = depths.get(key)
        if depth is None:
            sl.land = split_peat(sl.raw_classes, by_class.get(key, {}))
            continue
        row = _measured_row(table, depth)
        sl.table = replace(table, factors={**table.factors, row.lucode: row})
        sl.land = [
            LandClass(c.arealtype, c.skogbonitet, c.grunnforhold, float(c.area_m2))
            if c.arealtype != 60
            else LandClass(60, c.skogbonitet, c.grunnforhold, float(c.area_m2), MEASURED)
            for c in sl.raw_classes
        ]
        sl.peat_depth = {
            "mean_m": round(depth.mean_m, 4),
            "method": depth.method,
            "source": depth.source,
            "density_kg_c_m3": round(nina_density().central_kg_m3, 3),
        }


OVERLAP_KINDS = ("nature_types", "protected_areas")


def _overlaps(
    conn: Connection, lands: dict[int, SiteLand], srid: int, active: dict[str, list[Any]]
) -> None:
    """Features of active nature-type and protected-area layers each site touches, with the
    shared area (one query for both kinds)."""
    layers = {v.version_id: (kind, v) for kind in OVERLAP_KINDS for v in active.get(kind, [])}
    if not layers:
        return
    sites = [sl.site for sl in lands.values()]
    rows = conn.execute(
        text(
            """
            WITH s AS MATERIALIZED (
                SELECT k, ST_GeomFromWKB(w, :srid) AS g
                  FROM unnest(CAST(:keys AS bigint[]), CAST(:wkbs AS bytea[])) AS t(k, w))
            SELECT s.k, f.version_id, f.fid, f.attrs,
                   ST_Area(ST_Intersection(f.geom, s.g)) AS area_m2
              FROM s JOIN geoservice.feature f
                ON f.version_id = ANY(:layers) AND ST_Intersects(f.geom, s.g)
             ORDER BY s.k, area_m2 DESC, f.version_id, f.fid
            """
        ),
        {**_params(sites, srid), "layers": list(layers)},
    ).all()
    for r in rows:
        if r.area_m2 <= 0:
            continue
        kind, layer = layers[r.version_id]
        found: list[dict[str, Any]] = getattr(lands[int(r.k)], kind)
        found.append(
            {
                "version_id": r.version_id,
                "fid": r.fid,
                "attrs": r.attrs,
                "area_m2": round(float(r.area_m2), 2),
                "layer": layer.name,
            }
        )


def _carbon_rasters(
    conn: Connection, lands: dict[int, SiteLand], srid: int, active: dict[str, list[Any]]
) -> None:
    """The exact sum of the carbon-density raster covering each site, where one does."""
    if not active.get("carbon_density"):
        return
    chosen = covering_versions(
        conn, "carbon_density", {k: sl.site.wkb for k, sl in lands.items()}, srid
    )
    by_path: dict[str, list[int]] = defaultdict(list)
    for key, row in chosen.items():
        if row.storage_path is not None:
            by_path[row.storage_path].append(key)
    for path, keys in by_path.items():  # each raster opened once for all its sites
        sums = coverage_sums(path, [lands[k].site.wkb for k in keys])
        for key, site_sum in zip(keys, sums, strict=True):
            if site_sum.covered_m2 > 0:
                lands[key].carbon_raster = (chosen[key], site_sum)


def site_lands(
    conn: Connection, sites: list[Site], srid: int, table: FactorTable
) -> dict[int, SiteLand]:
    """Read everything about every site, a few queries for all of them."""
    lands = {s.key: SiteLand(site=s) for s in sites}
    active = active_by_kind(conn)
    _land_cover(conn, lands, srid)
    _mire(conn, lands, srid, table, active)
    _overlaps(conn, lands, srid, active)
    _carbon_rasters(conn, lands, srid, active)
    return lands


CHUNK = 200  # sites read per round of queries (and per progress step)


def chunked(sites: list[Site], size: int = CHUNK) -> list[list[Site]]:
    """Sites in rounds of ``size``."""
    return [sites[i : i + size] for i in range(0, len(sites), size)]


def read_ahead(
    engine: Engine, chunks: list[list[Site]], srid: int, table: FactorTable
) -> Iterator[dict[int, SiteLand]]:
    """What PostGIS says about each chunk of sites, the next chunk read on a second
    connection while the caller values this one (the two cores work at once)."""

    def read(chunk: list[Site]) -> dict[int, SiteLand]:
        with engine.connect() as conn:
            lands = site_lands(conn, chunk, srid, table)
        return {s.key: lands[s.key] for s in chunk}

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, chunks[0]) if chunks else None
        for i in range(len(chunks)):
            assert pending is not None
            lands = pending.result()
            pending = pool.submit(read, chunks[i + 1]) if i + 1 < len(chunks) else None
            yield lands
