"""Alembic environment: online migrations against the URL set by geoservice.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config


def run_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade --sql``) for DBAs who apply it themselves."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Apply migrations in one transaction, so a failing step leaves the schema untouched."""
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by geoservice.migrate.alembic_config"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
