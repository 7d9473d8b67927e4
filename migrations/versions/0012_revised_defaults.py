"""Revised shipped defaults: peat ranges from depth span × density quartiles, the 20-year
preset's mineral-soil range and gases. Stored as new versions; earlier versions stay, and a
result keeps naming the version that produced it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from analyses.factors import DEFAULT_CSV, DEFAULT_NAME, parse_factor_csv, store_table
    from analyses.presets import PRESETS
    from core.versions import next_version

    conn = op.get_bind()
    content = DEFAULT_CSV.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    newest = conn.execute(
        sa.text(
            "SELECT sha256 FROM geoservice.carbon_factor_table WHERE name = :n "
            "ORDER BY version DESC LIMIT 1"
        ),
        {"n": DEFAULT_NAME},
    ).scalar()
    if newest is not None and newest != digest:
        active = conn.execute(
            sa.text("SELECT name FROM geoservice.carbon_factor_table WHERE active")
        ).scalar()
        store_table(
            conn,
            DEFAULT_NAME,
            parse_factor_csv(content.decode("utf-8")),
            sha256=digest,
            uploader="default",
            source_filename=DEFAULT_CSV.name,
            activate=active in (None, DEFAULT_NAME),  # an admin's own table stays active
        )
    for preset in PRESETS.values():
        definition = {k: v for k, v in asdict(preset).items() if k != "version"}
        stored = conn.execute(
            sa.text(
                "SELECT definition FROM geoservice.method_preset WHERE name = :n "
                "AND uploader = 'built-in' ORDER BY version DESC LIMIT 1"
            ),
            {"n": preset.name},
        ).scalar()
        if stored is None or stored == definition:
            continue
        version = next_version(conn, "preset", preset.name)
        conn.execute(
            sa.text(
                "INSERT INTO geoservice.method_preset (name, version, definition, uploader) "
                "VALUES (:n, :v, CAST(:d AS jsonb), 'built-in')"
            ),
            {"n": preset.name, "v": version, "d": json.dumps(definition)},
        )


def downgrade() -> None:
    """Later versions are kept: results name them."""
