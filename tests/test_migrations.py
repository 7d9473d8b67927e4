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
