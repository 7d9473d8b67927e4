"""Words and numbers as a person reads them: bokmål by default, English on request.

One small table (``core/data/texts.csv``: key, nb, en) serves the report, the maps and the
CLI. Numbers a person reads are formatted the Norwegian way (a no-break space between
thousands, a decimal comma); JSON and CSV keep plain numbers.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files
from typing import Any, Literal

Lang = Literal["nb", "en"]
LANGS: tuple[Lang, ...] = ("nb", "en")
DEFAULT_LANG: Lang = "nb"
TEXTS = files("core") / "data" / "texts.csv"
NBSP = "\u00a0"


@cache
def _table() -> dict[str, dict[str, str]]:
    with TEXTS.open(encoding="utf-8") as fh:
        return {row["key"]: row for row in csv.DictReader(fh)}


def t(key: str, lang: Lang = DEFAULT_LANG, **values: Any) -> str:
    """The text for ``key`` in ``lang``, with ``{name}`` placeholders filled in."""
    row = _table()[key]
    text = row.get(lang) or row["nb"]
    return text.format(**values) if values else text


def number(value: float | int | None, digits: int = 0, lang: Lang = DEFAULT_LANG) -> str:
    """``12 345,6`` in bokmål, ``12,345.6`` in English; an en dash for no value."""
    if value is None:
        return "–"
    plain = f"{float(value):,.{digits}f}"
    if lang == "en":
        return plain
    return plain.replace(",", NBSP).replace(".", ",")


def percent(share: float | None, digits: int = 0, lang: Lang = DEFAULT_LANG) -> str:
    """A share (0–1) as ``60 %``."""
    return "–" if share is None else f"{number(share * 100, digits, lang)}{NBSP}%"


def footprint_label(name: str, lang: Lang = DEFAULT_LANG) -> str:
    """A footprint's own name; the unnamed main footprint ("proposal") is "Forslaget"."""
    return t("footprint.proposal", lang) if name == "proposal" else name


def keys() -> set[str]:
    """Every key of the table (for tests)."""
    return set(_table())
