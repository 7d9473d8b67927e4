"""The shipped factor table and the built-in method presets, stored once by the schema.

Until now they were stored on first use, so reading presets or the factor table could take a
lock and write. Databases that already hold them are left as they are.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from analyses.factors import DEFAULT_CSV, DEFAULT_NAME, parse_factor_csv, store_table
    from analyses.presets import PRESETS

    conn = op.get_bind()
    has_table = conn.execute(
        sa.text("SELECT count(*) FROM geoservice.carbon_factor_table")
    ).scalar_one()
    if not has_table:
        content = DEFAULT_CSV.read_bytes()
        store_table(
            conn,
            DEFAULT_NAME,
            parse_factor_csv(content.decode("utf-8")),
            sha256=hashlib.sha256(content).hexdigest(),
            uploader="default",
            source_filename=DEFAULT_CSV.name,
        )
    known = set(
        conn.execute(sa.text("SELECT DISTINCT name FROM geoservice.method_preset")).scalars()
    )
    for preset in PRESETS.values():
        if preset.name in known:
            continue
        definition = {k: v for k, v in asdict(preset).items() if k != "version"}
        conn.execute(
            sa.text(
                "INSERT INTO geoservice.method_preset (name, version, definition, uploader) "
                "VALUES (:n, :v, CAST(:d AS jsonb), 'built-in')"
            ),
            {"n": preset.name, "v": preset.version, "d": json.dumps(definition)},
        )


def downgrade() -> None:
    op.execute("DELETE FROM geoservice.method_preset WHERE uploader = 'built-in'")
    op.execute(
        "DELETE FROM geoservice.carbon_factor_table WHERE uploader = 'default' AND version = 1"
    )
