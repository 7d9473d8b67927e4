import psycopg
import pytest

from geoservice import migrate


def _state(url: str) -> tuple[bool, bool, str | None]:
    """(postgis installed, geoservice schema exists, alembic revision)."""
    with psycopg.connect(url) as conn:
        postgis = conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'postgis'"
        ).fetchone()
        schema = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'geoservice'"
        ).fetchone()
        has_table = conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()
        revision = None
        if has_table and has_table[0]:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
    assert postgis is not None and schema is not None
    return bool(postgis[0]), bool(schema[0]), revision


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    # PostGIS comes from the privileged set-up step; the service role migrates the rest.
    assert _state(empty_database_url) == (True, False, None)

    migrate.upgrade(empty_database_url)
    assert _state(empty_database_url) == (True, True, migrate.head_revision())

    migrate.downgrade(empty_database_url, "base")
    postgis, schema, revision = _state(empty_database_url)
    assert (schema, revision) == (False, None)
    assert postgis, "PostGIS is shared and must survive a downgrade"

    migrate.upgrade(empty_database_url)
    assert _state(empty_database_url) == (True, True, migrate.head_revision())


def test_every_migration_steps_down_and_up(empty_database_url: str) -> None:
    """Walk the whole chain one step at a time, so each downgrade is exercised."""
    migrate.upgrade(empty_database_url)
    script = migrate.ScriptDirectory.from_config(migrate.alembic_config(empty_database_url))
    revisions = [r.revision for r in script.walk_revisions()]  # newest first
    for rev in revisions:
        migrate.downgrade(empty_database_url, "-1")
        assert _state(empty_database_url)[2] != rev
    assert _state(empty_database_url)[2] is None
    migrate.upgrade(empty_database_url)
    assert _state(empty_database_url)[2] == revisions[0]


def test_the_service_role_is_not_a_superuser(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False)
        owner = conn.execute(
            "SELECT nspowner::regrole::text = current_user FROM pg_namespace "
            "WHERE nspname = 'geoservice'"
        ).fetchone()
        assert owner == (True,)
        # What a leaked superuser connection could do, this one cannot.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")


def test_revised_defaults_arrive_as_new_versions(empty_database_url: str) -> None:
    """A database seeded with the earlier defaults (narrow peat ranges, a preset without the
    mineral-soil range) gets the revised ones as new versions; the old ones stay."""
    migrate.upgrade(empty_database_url, "0011")
    with psycopg.connect(empty_database_url) as conn:
        conn.execute(
            "UPDATE geoservice.carbon_factor_table SET sha256 = 'earlier' WHERE version = 1"
        )
        conn.execute(
            "UPDATE geoservice.method_preset SET definition = definition "
            "- 'mineral_soil_loss_low' - 'mineral_soil_loss_high' "
            "WHERE name = 'miljodirektoratet-20y'"
        )
    migrate.upgrade(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        tables = conn.execute(
            "SELECT version, active, sha256 <> 'earlier' FROM geoservice.carbon_factor_table "
            "ORDER BY version"
        ).fetchall()
        assert tables == [(1, False, False), (2, True, True)]
        presets = conn.execute(
            "SELECT name, version, definition->>'mineral_soil_loss_low' "
            "FROM geoservice.method_preset ORDER BY name, version"
        ).fetchall()
    assert ("miljodirektoratet-20y", 1, None) in presets
    assert ("miljodirektoratet-20y", 2, "0.25") in presets
    assert [p for p in presets if p[0] == "svv-stock"] == [("svv-stock", 1, None)]
