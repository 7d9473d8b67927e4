"""Whether a polygon layer version overlaps itself (for restoration baselines).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE geoservice.layer_version ADD COLUMN self_overlaps boolean;
        COMMENT ON COLUMN geoservice.layer_version.self_overlaps IS
            'true when two features share interior area; NULL when not checked';
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE geoservice.layer_version DROP COLUMN self_overlaps")
