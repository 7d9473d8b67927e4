"""Baseline: PostGIS and the schema that holds the service's own tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostGIS may already be there (the embedded cluster creates it); never drop it on the
    # way down, other databases on a shared server may rely on it.
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE SCHEMA geoservice")
    op.execute(
        "COMMENT ON SCHEMA geoservice IS "
        "'Tables of the carbon-aware land-use planning service (managed by Alembic)'"
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA geoservice")
