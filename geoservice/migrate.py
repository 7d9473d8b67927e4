"""Alembic, driven from code: the CLI, ``serve`` and the tests all come through here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import migrations
from core.database import sqlalchemy_url

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; URL-encoded passwords contain it.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` removes every table we own)."""
    command.downgrade(alembic_config(url), revision)


@cache
def head_revision() -> str:
    """The newest revision shipped with this version of the code (fixed for the process)."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused/")).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head
