"""Proposals can be listed, renamed, deleted and restored: who made them, and a delete mark.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE geoservice.proposal
            ADD COLUMN created_by text,
            ADD COLUMN deleted_at timestamptz;
        CREATE INDEX proposal_created_at_idx ON geoservice.proposal (created_at DESC);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX geoservice.proposal_created_at_idx;
        ALTER TABLE geoservice.proposal DROP COLUMN deleted_at, DROP COLUMN created_by;
        """
    )
