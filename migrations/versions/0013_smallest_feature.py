"""The smallest feature of a layer version, for vector tiles.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Versions published before stay NULL: their tiles keep looking for small features.
    op.execute(
        """
        ALTER TABLE geoservice.layer_version ADD COLUMN smallest_feature_m double precision;
        COMMENT ON COLUMN geoservice.layer_version.smallest_feature_m IS
            'the smallest feature''s larger bounding-box side in storage units; a tile whose '
            'unit is below it cannot have features too small to draw';
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE geoservice.layer_version DROP COLUMN smallest_feature_m")
