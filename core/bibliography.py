"""The sources every shipped number rests on, inside the project (``core/data``).

A factor row, preset, default or threshold names its sources by key in square brackets,
``[ipcc-2014-wetlands] Table 2.1``; :func:`citations` turns those keys into full entries for
the API, the CSV and the report. A key that does not resolve is an error, found by the tests.
"""

from __future__ import annotations

import csv
import re
from dataclasses import asdict, dataclass
from functools import cache
from importlib.resources import files
from typing import Any

BIBLIOGRAPHY = files("core") / "data" / "bibliography.csv"
KEY = re.compile(r"\[([a-z]{2,}[a-z0-9]*(?:-[a-z0-9]+)+)\]")


@dataclass(frozen=True)
class Source:
    """One entry of the bibliography."""

    key: str
    author: str
    title: str
    year: str
    publisher: str
    url: str
    used_for: str

    def citation(self) -> str:
        """The entry as one line: author (year). Title. Publisher. URL."""
        where = f" {self.url}" if self.url else ""
        return f"{self.author} ({self.year}). {self.title}. {self.publisher}.{where}"


@cache
def bibliography() -> dict[str, Source]:
    """Every entry by key."""
    with BIBLIOGRAPHY.open("r", encoding="utf-8") as fh:
        return {row["key"]: Source(**row) for row in csv.DictReader(fh)}


def keys_in(text: str | None) -> list[str]:
    """The bibliography keys a source text names, in order, once each."""
    seen: list[str] = []
    for key in KEY.findall(text or ""):
        if key not in seen:
            seen.append(key)
    return seen


def citations(*texts: str | None) -> list[dict[str, Any]]:
    """Full entries (with a one-line citation) for every key the texts name."""
    entries = bibliography()
    found: list[dict[str, Any]] = []
    for text in texts:
        for key in keys_in(text):
            if key in entries and all(f["key"] != key for f in found):
                found.append({**asdict(entries[key]), "citation": entries[key].citation()})
    return found


def unresolved(text: str | None) -> list[str]:
    """Keys a text names that are not in the bibliography."""
    return [k for k in keys_in(text) if k not in bibliography()]
