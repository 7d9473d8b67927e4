"""Peat carbon density derived from NINA's lab-analysed Norwegian samples (domain.md §8).

The value is computed from the data file, not typed in: central = mean, low/high = lower and
upper quartile of ``C density (kg/m3)``. One metre of peat over one hectare is 10 000 m³, so
t C/ha per metre = kg C/m³ × 10.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from functools import cache
from pathlib import Path

NINA_FILE = (
    Path(__file__).resolve().parents[1] / "data" / "peat-carbon-nina" / "gran_dataset_utf8.csv"
)
COLUMN = "C density (kg/m3)"


@dataclass(frozen=True)
class PeatDensity:
    """Carbon per volume of peat, with its range and where it came from."""

    central_kg_m3: float
    low_kg_m3: float
    high_kg_m3: float
    samples: int
    source: str

    def t_c_per_ha_per_m(self, which: str = "central") -> float:
        """Stock of one metre of peat over one hectare."""
        return {"central": self.central_kg_m3, "low": self.low_kg_m3, "high": self.high_kg_m3}[
            which
        ] * 10


@cache
def nina_density(path: Path = NINA_FILE) -> PeatDensity:
    """Mean and quartiles of the measured carbon densities."""
    values: list[float] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            raw = (row.get(COLUMN) or "").strip().replace(",", ".")
            try:
                values.append(float(raw))
            except ValueError:
                continue
    low, _, high = statistics.quantiles(values, n=4, method="inclusive")
    return PeatDensity(
        central_kg_m3=statistics.fmean(values),
        low_kg_m3=low,
        high_kg_m3=high,
        samples=len(values),
        source="NINA GRAN dataset (github.com/NINAnor/carbonviewer, MIT, © 2023 NINA): "
        f"mean and quartiles of {len(values)} lab-analysed samples",
    )
