"""``python -m geoservice``."""

from geoservice.cli import app

app()
