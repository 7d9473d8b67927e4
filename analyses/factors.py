"""Carbon factor tables: versioned data, every row with its source, status and range.

The default Norwegian table ships as ``factors/norway_default.csv`` (each row names its sources
by bibliography key);
admins upload new versions as CSV in our format or InVEST's ``carbon_pools`` format
(``lucode,c_above,c_below,c_soil,c_dead``). Values are t C/ha of elemental carbon.

``lucode`` convention (so InVEST tables map onto AR5 without extra columns):
``arealtype × 100`` is the class default; ``+ skogbonitet`` (11–15) refines forest (30),
``+ grunnforhold`` (41–45) refines open land (50), and ``+ 1``/``+ 2`` are shallow/deep mire (60).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from importlib.resources import files
from typing import Any

from sqlalchemy import Connection, Engine, text

from core.errors import InvalidInput, NotFound
from core.versions import next_version

POOLS = ("c_above", "c_below", "c_dead", "c_soil")
STATUSES = ("sourced", "derived", "provisional")
DEFAULT_CSV = files("analyses") / "factors" / "norway_default.csv"
DEFAULT_NAME = "norway-default"
# Every AR5 class land can be in needs a factor (99 "ikke kartlagt" is reported as unmapped).
REQUIRED_ARTYPES = (11, 12, 21, 22, 23, 30, 50, 60, 70, 81, 82)
# Mire rows: unknown depth, shallow, deep; "measured" (9) is derived per site from depth data.
PEAT_CLASS_OFFSET = {"ukjent": 0, "grunn": 1, "djup": 2, "measured": 9}


@dataclass(frozen=True)
class Factor:
    """Carbon stock of one land class, t C/ha per pool, with range and provenance."""

    lucode: int
    name: str
    c_above: float
    c_below: float
    c_dead: float
    c_soil: float
    low_factor: float
    high_factor: float
    status: str
    source: str

    @property
    def arealtype(self) -> int:
        """AR5 arealtype of the row (from the lucode convention)."""
        return self.lucode // 100


def _number(row: dict[str, str], column: str, line: int, default: float | None = None) -> float:
    raw = (row.get(column) or "").strip()
    if not raw:
        if default is not None:
            return default
        raise InvalidInput(f"Factor table line {line}: {column} is empty.", code="bad_factor_table")
    try:
        value = float(raw.replace(",", "."))
    except ValueError as exc:
        raise InvalidInput(
            f"Factor table line {line}: {column} = {raw!r} is not a number.",
            code="bad_factor_table",
        ) from exc
    if value < 0:
        raise InvalidInput(
            f"Factor table line {line}: {column} = {value:g} is negative; carbon stocks are "
            "zero or more.",
            code="bad_factor_table",
        )
    return value


def parse_factor_csv(content: str, *, default_source: str | None = None) -> list[Factor]:
    """Read a factor table (ours or InVEST's); refuse it with a clear message when wrong."""
    sample = content[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(content), delimiter=delimiter)
    columns = {c.strip() for c in (reader.fieldnames or [])}
    missing = [c for c in ("lucode", *POOLS) if c not in columns]
    if missing:
        raise InvalidInput(
            f"The factor table lacks the column(s) {', '.join(missing)}. Expected at least "
            "lucode,c_above,c_below,c_soil,c_dead (InVEST carbon_pools) in t C/ha.",
            code="bad_factor_table",
        )
    if "source" not in columns and not default_source:
        raise InvalidInput(
            "Every carbon factor needs a source: add a 'source' column or give one source "
            "for the whole table.",
            code="bad_factor_table",
        )
    factors: dict[int, Factor] = {}
    for line, raw_row in enumerate(reader, start=2):
        row = {k.strip(): (v or "") for k, v in raw_row.items() if k}
        try:
            lucode = int(row["lucode"].strip())
        except ValueError as exc:
            raise InvalidInput(
                f"Factor table line {line}: lucode {row['lucode']!r} is not a whole number.",
                code="bad_factor_table",
            ) from exc
        if lucode in factors:
            raise InvalidInput(
                f"Factor table line {line}: lucode {lucode} appears twice.",
                code="bad_factor_table",
            )
        status = (row.get("status") or "provisional").strip()
        if status not in STATUSES:
            raise InvalidInput(
                f"Factor table line {line}: status {status!r} is not one of {', '.join(STATUSES)}.",
                code="bad_factor_table",
            )
        low = _number(row, "low_factor", line, 1.0)
        high = _number(row, "high_factor", line, 1.0)
        if not low <= 1.0 <= high:
            raise InvalidInput(
                f"Factor table line {line}: low_factor must be ≤ 1 ≤ high_factor.",
                code="bad_factor_table",
            )
        factors[lucode] = Factor(
            lucode=lucode,
            name=(row.get("name") or f"lucode {lucode}").strip(),
            c_above=_number(row, "c_above", line),
            c_below=_number(row, "c_below", line),
            c_dead=_number(row, "c_dead", line),
            c_soil=_number(row, "c_soil", line),
            low_factor=low,
            high_factor=high,
            status=status,
            source=(row.get("source") or default_source or "").strip(),
        )
    lacking = [a for a in REQUIRED_ARTYPES if a * 100 not in factors]
    if lacking:
        raise InvalidInput(
            "The factor table has no default row for AR5 arealtype "
            + ", ".join(str(a) for a in lacking)
            + f" (lucode {lacking[0] * 100}, ...). Every land class needs a factor.",
            code="bad_factor_table",
        )
    return list(factors.values())


def lucode_for(
    arealtype: int,
    skogbonitet: int | None,
    grunnforhold: int | None,
    peat_class: str | None,
    table: dict[int, Factor],
) -> int | None:
    """The most specific row of ``table`` for a land class; None when nothing fits."""
    base = arealtype * 100
    candidates = []
    if arealtype == 30 and skogbonitet in (11, 12, 13, 14, 15):
        candidates.append(base + skogbonitet)
    if arealtype == 50 and grunnforhold in (41, 42, 43, 44, 45):
        candidates.append(base + grunnforhold)
    if arealtype == 60 and peat_class in PEAT_CLASS_OFFSET:
        candidates.append(base + PEAT_CLASS_OFFSET[peat_class])
    candidates.append(base)
    return next((c for c in candidates if c in table), None)


@dataclass(frozen=True)
class FactorTable:
    """One stored version of a factor table."""

    id: int
    name: str
    version: int
    sha256: str
    factors: dict[int, Factor]

    def describe(self) -> dict[str, Any]:
        """Identification for provenance."""
        return {"id": self.id, "name": self.name, "version": self.version, "sha256": self.sha256}


def store_table(
    conn: Connection,
    name: str,
    factors: list[Factor],
    *,
    sha256: str,
    uploader: str | None,
    source_filename: str | None,
    activate: bool = True,
) -> int:
    """Insert a new version of the named table (and make it the active one)."""
    version = next_version(conn, "factor_table", name)
    table_id = conn.execute(
        text(
            "INSERT INTO geoservice.carbon_factor_table "
            "(name, version, sha256, uploader, source_filename, factors) "
            "VALUES (:n, :v, :s, :u, :f, CAST(:rows AS jsonb)) RETURNING id"
        ),
        {
            "n": name,
            "v": version,
            "s": sha256,
            "u": uploader,
            "f": source_filename,
            "rows": json.dumps([asdict(f) for f in factors], ensure_ascii=False),
        },
    ).scalar_one()
    if activate:
        # One active table: writers of different names take turns here, and the old table is
        # switched off before the new one is on (the unique index checks row by row).
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('factor_table', 1))"))
        conn.execute(
            text(
                "UPDATE geoservice.carbon_factor_table SET active = false "
                "WHERE active AND id <> :id"
            ),
            {"id": table_id},
        )
        conn.execute(
            text("UPDATE geoservice.carbon_factor_table SET active = true WHERE id = :id"),
            {"id": table_id},
        )
    return int(table_id)


def _load(row: Any) -> FactorTable:
    factors = {int(f["lucode"]): Factor(**f) for f in row.factors}
    return FactorTable(
        id=row.id, name=row.name, version=row.version, sha256=row.sha256, factors=factors
    )


def active_table(engine: Engine) -> FactorTable:
    """The active factor table (the shipped default is stored by migration 0010)."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, name, version, sha256, factors FROM geoservice.carbon_factor_table "
                "WHERE active"
            )
        ).first()
    if row is None:
        raise NotFound(
            "No factor table is active; the database is not migrated to the newest schema "
            "(geoservice migrate).",
            code="no_factor_table",
        )
    return _load(row)


def upload_table(
    engine: Engine,
    name: str,
    content: bytes,
    *,
    source: str | None,
    uploader: str | None,
    filename: str | None,
) -> FactorTable:
    """Validate and store an uploaded table as the new active version."""
    try:
        text_content = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The factor table is not UTF-8 text.", code="bad_factor_table") from exc
    factors = parse_factor_csv(text_content, default_source=source)
    with engine.begin() as conn:
        table_id = store_table(
            conn,
            name,
            factors,
            sha256=hashlib.sha256(content).hexdigest(),
            uploader=uploader,
            source_filename=filename,
        )
        row = conn.execute(
            text(
                "SELECT id, name, version, sha256, factors FROM geoservice.carbon_factor_table "
                "WHERE id = :id"
            ),
            {"id": table_id},
        ).one()
    return _load(row)


def list_tables(engine: Engine) -> list[dict[str, Any]]:
    """Every stored factor table version, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, name, version, sha256, uploader, source_filename, created_at, "
                "active, jsonb_array_length(factors) AS rows "
                "FROM geoservice.carbon_factor_table ORDER BY id DESC"
            )
        ).all()
    return [{**dict(r._mapping), "created_at": r.created_at.isoformat()} for r in rows]


def get_table(engine: Engine, table_id: int) -> FactorTable:
    """One stored version by id."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, name, version, sha256, factors FROM geoservice.carbon_factor_table "
                "WHERE id = :id"
            ),
            {"id": table_id},
        ).first()
    if row is None:
        raise NotFound(f"There is no factor table {table_id}.", code="factor_table_not_found")
    return _load(row)
