"""Alembic migrations: every schema change of the service, in order."""
