import psycopg
import pytest

from geoservice.database import create_db_engine
from geoservice.demo import DEMO_DATA, DEMO_LAYERS, load_demo, load_demo_proposals
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
