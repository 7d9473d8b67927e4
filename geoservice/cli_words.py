"""Errors in the command line's own words: the layers speak to the API (``crs=EPSG:25833``,
``check_extent=false``); a person at a terminal is told the flag (``--crs EPSG:25833``)."""

from __future__ import annotations

import re

_API_TO_CLI = (
    (re.compile(r"\s*\(or --crs EPSG:\d+\)"), ""),
    (re.compile(r"\bcrs=(EPSG:\d+)"), r"--crs \1"),
    (re.compile(r"\bcheck_extent=false\b"), "--no-check-extent"),
    (re.compile(r"\bkeep_unknown=true\b"), "--keep-unknown"),
    (re.compile(r"\blayer=<name>, or --layer on the command line"), "--layer <name>"),
    (re.compile(r'\bfield_map, e\.g\. \{"(\w+)": "<your field>"\}'), r"--field \1=<your field>"),
    (re.compile(r"\bfield_map\b"), "--field"),
    (re.compile(r"\bkommune=(\d{4})"), r"--kommune \1"),
)


def cli_text(detail: str) -> str:
    """An error message with the API's parameter names replaced by the CLI's flags."""
    for pattern, flag in _API_TO_CLI:
        detail = pattern.sub(flag, detail)
    return detail
