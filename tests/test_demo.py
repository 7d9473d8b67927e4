import psycopg

from geoservice.database import create_db_engine
from geoservice.demo import DEMO_DATA, DEMO_LAYERS, load_demo
from geoservice.settings import Settings


def test_demo_loads_real_layers_once(database_url: str, settings: Settings) -> None:
    for item in DEMO_LAYERS:
        assert (DEMO_DATA / item.path).is_file()
        assert (DEMO_DATA / item.path).parent.joinpath("SOURCE.txt").is_file()
    engine = create_db_engine(database_url, settings)
    try:
        first = load_demo(engine, settings, say=lambda _: None)
        again = load_demo(engine, settings, say=lambda _: None)
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
        ("Naturtyper NiN Follo (utvalg)", "nature_types", 2079, 1),
    ]
    assert all("©" in r[3] for r in rows)
