from datetime import date

import psycopg
import pytest

from geoservice.database import create_db_engine
from geoservice.demo import (
    DEMO_DATA,
    DEMO_LAYERS,
    load_demo,
    load_demo_proposals,
    load_demo_restoration,
)
from geoservice.settings import Settings


def test_demo_loads_real_layers_once(database_url: str, settings: Settings) -> None:
    for item in DEMO_LAYERS:
        assert (DEMO_DATA / item.path).is_file()
        assert (DEMO_DATA / item.path).parent.joinpath("SOURCE.txt").is_file()
    engine = create_db_engine(database_url, settings)
    try:
        first = load_demo(engine, settings, say=lambda _: None)
        again = load_demo(engine, settings, say=lambda _: None)
        proposals = load_demo_proposals(engine, settings, say=lambda _: None)
        assert load_demo_restoration(engine, settings, say=lambda _: None) == 4
        assert load_demo_restoration(engine, settings, say=lambda _: None) == 4
        assert load_demo_proposals(engine, settings, say=lambda _: None) == proposals
    finally:
        engine.dispose()
    assert first == again
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT l.name, l.kind, v.feature_count, v.licence, "
            "(SELECT count(*) FROM geoservice.layer_version x WHERE x.layer_id = l.id) "
            "FROM geoservice.layer l JOIN geoservice.layer_version v "
            "ON v.id = l.active_version_id ORDER BY l.id"
        ).fetchall()
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("Kommuner 2024", "boundaries", 357, 1),
        ("Fylker 2024", "boundaries", 15, 1),
        ("N50 arealdekke Ås", "land_cover", 1286, 1),
        ("Kommuneplan Ås (EKSEMPEL)", "land_use_plan", 6, 1),
        ("Forringet areal Ås (EKSEMPEL)", "degraded_areas", 32, 1),
        ("Naturtyper NiN Follo (utvalg)", "nature_types", 2079, 1),
    ]
    assert all("©" in r[3] for r in rows)

    with psycopg.connect(database_url) as conn:
        results = conn.execute(
            "SELECT result FROM geoservice.proposal WHERE id = ANY(%s) ORDER BY id", (proposals,)
        ).fetchall()
    assert len(results) == 2
    housing = results[0][0]["footprints"]
    assert [f["name"] for f in housing] == ["proposal", "Alternativ Åkerlia", "Alternativ Myrdalen"]
    for fp in housing:  # 200 m × 150 m, fully inside N50 Ås
        assert fp["area_m2"] == pytest.approx(30_000, abs=0.01)
        assert fp["no_land_cover_share"] == pytest.approx(0, abs=1e-9)
        assert sum(c["area_m2"] for c in fp["classes"]) == pytest.approx(30_000, abs=0.1)
        assert fp["emission_t_co2e"]["central"] > 0


def test_demo_restoration_progress(database_url: str, settings: Settings) -> None:
    import geopandas as gpd
    import shapely

    from analyses.restoration import progress

    engine = create_db_engine(database_url, settings)
    try:
        load_demo(engine, settings, say=lambda _: None)
        load_demo_restoration(engine, settings, say=lambda _: None)
        result = progress(engine, region="NO", as_of=date(2025, 1, 1))
    finally:
        engine.dispose()
    base = gpd.read_file(DEMO_DATA / "demo" / "forringet_areal_aas_eksempel.geojson")
    projects = gpd.read_file(DEMO_DATA / "demo" / "restaureringsprosjekter_aas_eksempel.geojson")
    counting = projects[projects.status_date <= "2025-01-01"]
    expected = (
        shapely.intersection(
            shapely.union_all(shapely.make_valid(counting.geometry.values)),
            shapely.union_all(shapely.make_valid(base.geometry.values)),
        ).area
        / 10_000
    )
    assert result["baseline_degraded_ha"] == pytest.approx(base.area.sum() / 10_000, abs=1e-4)
    assert result["under_restoration_ha"] == pytest.approx(expected, abs=1e-4)  # 4 decimals
    assert len(counting) == 3  # the 2026 plan does not count yet


def test_the_demo_start_up_is_audited(database_url: str, settings: Settings) -> None:
    from typer.testing import CliRunner

    from geoservice.cli import app as cli

    env = {"GEOSERVICE_DATABASE_URL": database_url, "GEOSERVICE_DATA_DIR": str(settings.data_dir)}
    loaded = CliRunner().invoke(cli, ["demo"], env=env)
    assert loaded.exit_code == 0, loaded.output
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT method, path, objects FROM geoservice.audit_log WHERE path = 'demo'"
        ).fetchall()
    [(method, _, objects)] = rows
    assert method == "CLI"
    assert len(objects["layer_ids"]) == len(DEMO_LAYERS)
    assert objects["restoration_projects"] == 4 and len(objects["proposal_ids"]) == 2
    assert "gs_" not in str(objects)  # the tokens themselves are never recorded
