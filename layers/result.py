"""What an upload produced; returned by the API and printed by the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ImportResult:
    """One published layer version, as the uploader sees it."""

    layer_id: int
    name: str
    kind: str
    version: int
    version_id: int
    feature_count: int
    source_feature_count: int
    bbox: list[float]
    storage_crs: str
    source_crs: str
    source_sha256: str
    field_map: dict[str, str]
    repairs: dict[str, int]
    unknown_codes: dict[str, Any]
    geometry_type: str
    raster: dict[str, Any] | None = None
    active: bool = True
    # What was repaired in the file itself to read it (a SOSI file's real text encoding, a
    # missing .SLUTT), in words for the uploader.
    source_notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)
