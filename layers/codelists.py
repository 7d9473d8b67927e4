"""Norwegian code lists, kept as CSV data next to this module (one file per list)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

CODELIST_DIR = files("layers") / "codelists"

Code = int | str


@dataclass(frozen=True)
class CodeList:
    """One code list: codes with their names and any extra columns (source, flags, ...)."""

    name: str
    numeric: bool
    rows: dict[Code, dict[str, str]] = field(repr=False)
    # Other names a code goes by in delivered files (an ``aliases`` column, ``;``-separated):
    # N50 in SOSI names its classes by object type (``DyrketMark``), not by code.
    aliases: dict[str, Code] = field(default_factory=dict, repr=False)

    def normalise(self, value: object) -> Code | None:
        """The canonical form of a value read from a file (``'21'``, ``21.0`` -> ``21``)."""
        if value is None:
            return None
        if self.numeric:
            if isinstance(value, bool):
                return None
            if isinstance(value, int):
                return value
            if isinstance(value, float):
                return int(value) if value.is_integer() else None
            text = str(value).strip()
            try:
                number = float(text)
            except ValueError:
                return self.aliases.get(text.casefold())
            return int(number) if number.is_integer() else None
        text = str(value).strip()
        return text.casefold() if text else None

    def __contains__(self, value: object) -> bool:
        code = self.normalise(value)
        return code is not None and code in self.rows

    def label(self, code: Code) -> str:
        """The human name of a code."""
        return self.rows[code]["name"]

    @property
    def codes(self) -> list[Code]:
        """All codes, in file order."""
        return list(self.rows)


@cache
def load(name: str) -> CodeList:
    """Read ``codelists/<name>.csv``; the first column is the code."""
    path = CODELIST_DIR / f"{name}.csv"
    with path.open("r", encoding="utf-8") as fh:
        raw = list(csv.DictReader(fh))
    numeric = all(row["code"].strip().lstrip("-").isdigit() for row in raw)
    rows: dict[Code, dict[str, str]] = {}
    aliases: dict[str, Code] = {}
    for row in raw:
        code: Code = int(row["code"]) if numeric else row["code"].strip().casefold()
        rows[code] = {k: v for k, v in row.items() if k != "code"}
        for alias in (row.get("aliases") or "").split(";"):
            if alias.strip():
                aliases[alias.strip().casefold()] = code
    return CodeList(name=name, numeric=numeric, rows=rows, aliases=aliases)


def n50_to_ar5(n50_code: int) -> int:
    """The documented N50 -> AR5 arealtype crosswalk (``codelists/n50_arealdekke.csv``)."""
    return int(load("n50_arealdekke").rows[n50_code]["ar5_arealtype"])
