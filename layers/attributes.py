"""SQL for a kind's typed attributes: cast, check against code lists, report bad values.

Everything is composed with psycopg's ``sql`` module: source field names and codes are
quoted literals, staging columns are identifiers we chose; no user text is formatted in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from core.errors import InvalidInput
from layers import codelists
from layers.kinds import Attribute, LayerKind
from layers.staging import Stager

MAX_BAD_IDS = 10
_INT_TEXT = r"^[-+]?[0-9]+([.][0-9]*)?$"
_FLOAT_TEXT = r"^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$"


@dataclass(frozen=True)
class AttrSql:
    """Expressions over the staging row ``s`` for one mapped attribute."""

    attr: Attribute
    source: str
    value: sql.Composable  # typed value, NULL when missing or invalid
    bad: sql.Composable  # present in the file but not valid
    raw: sql.Composable  # the value as written in the file


def _numeric(col: sql.Composable, pg_type: str) -> sql.Composable:
    if pg_type in ("bigint", "numeric", "double precision"):
        return sql.SQL("{}::numeric").format(col)
    if pg_type == "boolean":
        return sql.SQL("NULL::numeric")
    return sql.SQL("CASE WHEN btrim({c}) ~ {re} THEN btrim({c})::numeric END").format(
        c=col, re=sql.Literal(_INT_TEXT)
    )


def attribute_sql(attr: Attribute, source: str, stager: Stager) -> AttrSql:
    """Build the value / validity expressions for one attribute fed by ``source``."""
    staged = stager.column(source)
    col = sql.SQL("s.{}").format(sql.Identifier(staged.column))
    raw = sql.SQL("nullif(btrim({}::text), '')").format(col)
    value: sql.Composable
    valid: sql.Composable
    present = sql.SQL("({} IS NOT NULL)").format(raw)
    if attr.codelist and not codelists.load(attr.codelist).numeric:
        lowered = sql.SQL("nullif(s.{}, '')").format(sql.Identifier(stager.lowered[source]))
        codes = sql.Literal([str(c) for c in codelists.load(attr.codelist).codes])
        valid = sql.SQL("({l} = ANY({codes}::text[]))").format(l=lowered, codes=codes)
        value = sql.SQL("CASE WHEN {v} THEN {l} END").format(v=valid, l=lowered)
    elif attr.codelist or attr.type == "int":
        num = _numeric(col, staged.pg_type)
        aliases = codelists.load(attr.codelist).aliases if attr.codelist else {}
        if aliases and staged.pg_type not in ("bigint", "numeric", "double precision"):
            # A code written by its other name (N50 in SOSI: ``DyrketMark`` for 600).
            by_name = sql.SQL("({a}::jsonb ->> lower(btrim({c}::text)))::numeric").format(
                a=sql.Literal(json.dumps(aliases, ensure_ascii=False)), c=col
            )
            num = sql.SQL("coalesce({}, {})").format(num, by_name)
        if attr.codelist:
            codes = sql.Literal([int(c) for c in codelists.load(attr.codelist).codes])
            if staged.pg_type == "bigint":  # the common case: compare without casting
                valid = sql.SQL("({c} = ANY({codes}::bigint[]))").format(c=col, codes=codes)
                num = col
            else:
                valid = sql.SQL("({n} = ANY({codes}::numeric[]))").format(n=num, codes=codes)
        else:
            valid = sql.SQL("({n} = trunc({n}) AND abs({n}) < 1e15)").format(n=num)
        value = sql.SQL("CASE WHEN {v} THEN ({n})::bigint END").format(v=valid, n=num)
    elif attr.type == "float":
        if staged.pg_type in ("bigint", "numeric", "double precision"):
            value = sql.SQL("{}::double precision").format(col)
            valid = sql.SQL("true")
        else:
            dotted = sql.SQL("replace(btrim({}::text), ',', '.')").format(col)
            valid = sql.SQL("({d} ~ {re})").format(d=dotted, re=sql.Literal(_FLOAT_TEXT))
            value = sql.SQL("CASE WHEN {v} THEN ({d})::double precision END").format(
                v=valid, d=dotted
            )
    else:
        value, valid = raw, sql.SQL("true")
    bad = sql.SQL("({p} AND NOT coalesce({v}, false))").format(p=present, v=valid)
    return AttrSql(attr=attr, source=source, value=value, bad=bad, raw=raw)


def attribute_sqls(kind: LayerKind, field_map: dict[str, str], stager: Stager) -> list[AttrSql]:
    """Expressions for every mapped attribute of the kind."""
    return [attribute_sql(kind.attribute(a), src, stager) for a, src in field_map.items()]


def attribute_columns(attrs: list[AttrSql], stager: Stager) -> list[str]:
    """The staging columns the attribute expressions read."""
    columns = [stager.column(a.source).column for a in attrs]
    return columns + [stager.lowered[a.source] for a in attrs if a.source in stager.lowered]


def _json_object(pairs: list[tuple[sql.Composable, sql.Composable]]) -> sql.Composable:
    """jsonb_build_object takes at most 50 pairs; chain several with ||."""
    if not pairs:
        return sql.SQL("'{}'::jsonb")
    parts = []
    for i in range(0, len(pairs), 50):
        args = sql.SQL(", ").join(sql.SQL("{}, {}").format(k, v) for k, v in pairs[i : i + 50])
        parts.append(sql.SQL("jsonb_build_object({})").format(args))
    return sql.SQL("jsonb_strip_nulls({})").format(sql.SQL(" || ").join(parts))


def stored_attributes(kind_name: str, mapped: set[str]) -> frozenset[str]:
    """The attributes a version's features carry, from the ones its field map filled: land
    cover derives AR5 arealtype from N50 (see :func:`attrs_expression`)."""
    if kind_name == "land_cover" and "n50_klasse" in mapped:
        return frozenset(mapped | {"arealtype"})
    return frozenset(mapped)


def attrs_expression(kind: LayerKind, attrs: list[AttrSql]) -> sql.Composable:
    """The ``attrs`` jsonb of a feature; land cover derives AR5 arealtype from N50 if needed."""
    pairs: list[tuple[sql.Composable, sql.Composable]] = [
        (sql.Literal(a.attr.name), a.value) for a in attrs
    ]
    names = {a.attr.name for a in attrs}
    if kind.name == "land_cover" and "arealtype" not in names and "n50_klasse" in names:
        n50 = next(a for a in attrs if a.attr.name == "n50_klasse")
        cases = sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN {}").format(
                sql.Literal(int(code)), sql.Literal(codelists.n50_to_ar5(int(code)))
            )
            for code in codelists.load("n50_arealdekke").codes
        )
        crosswalk = sql.SQL("CASE {v} {cases} END").format(v=n50.value, cases=cases)
        pairs.append((sql.Literal("arealtype"), crosswalk))
        pairs.append(
            (
                sql.Literal("arealtype_source"),
                sql.SQL("CASE WHEN {} IS NOT NULL THEN 'n50_crosswalk' END").format(crosswalk),
            )
        )
    return _json_object(pairs)


def props_expression(
    stager: Stager, attrs: list[AttrSql], report: dict[str, Any]
) -> sql.Composable:
    """The ``props`` jsonb: every unmapped field as typed in the file, plus kept bad values.

    ``report`` (from :func:`unknown_codes`) says which attributes have bad values at all;
    the others add nothing, and building a JSON object per feature is what costs.
    """
    mapped = {a.source for a in attrs}
    pairs: list[tuple[sql.Composable, sql.Composable]] = [
        (sql.Literal(c.source), sql.SQL("s.{}").format(sql.Identifier(c.column)))
        for c in stager.columns
        if c.source not in mapped
    ]
    pairs += [
        (
            sql.Literal(a.source),
            sql.SQL("CASE WHEN {} THEN s.{} END").format(
                a.bad, sql.Identifier(stager.column(a.source).column)
            ),
        )
        for a in attrs
        if a.attr.name in report
    ]
    return _json_object(pairs)


def unknown_codes(
    cur: psycopg.Cursor[Any], stage: sql.Composable, attrs: list[AttrSql]
) -> dict[str, Any]:
    """Bad values per attribute: the field, each value with its count, the first feature ids.

    One scan finds which attributes have bad values at all (usually none); only those are
    looked at in detail.
    """
    report: dict[str, Any] = {}
    if not attrs:
        return report
    counts = cur.execute(
        sql.SQL("SELECT {} FROM {} s").format(
            sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {})").format(a.bad) for a in attrs),
            stage,
        )
    ).fetchone()
    assert counts is not None
    for a, bad_count in zip(attrs, counts, strict=True):
        if not bad_count:
            continue
        rows = cur.execute(
            sql.SQL(
                "SELECT {raw}, count(*) FROM {stage} s WHERE {bad} GROUP BY 1 ORDER BY 2 DESC, 1 "
                "LIMIT 20"
            ).format(raw=a.raw, bad=a.bad, stage=stage)
        ).fetchall()
        if not rows:
            continue
        ids = cur.execute(
            sql.SQL("SELECT n FROM {stage} s WHERE {bad} ORDER BY n LIMIT {lim}").format(
                bad=a.bad, lim=sql.Literal(MAX_BAD_IDS), stage=stage
            )
        ).fetchall()
        report[a.attr.name] = {
            "field": a.source,
            "values": {str(v): int(n) for v, n in rows},
            "feature_ids": [int(r[0]) for r in ids],
        }
    return report


def raise_for_unknown(kind: LayerKind, report: dict[str, Any]) -> None:
    """Refuse the upload, naming field, values and features, when codes are unknown."""
    if not report:
        return
    parts = []
    for attr_name, item in report.items():
        attr = kind.attribute(attr_name)
        what = f"code list {attr.codelist}" if attr.codelist else f"type {attr.type}"
        shown = ", ".join(f"{v!r} ({n}×)" for v, n in list(item["values"].items())[:10])
        parts.append(
            f"field {item['field']!r} ({attr_name}, {what}) has values that are not valid: "
            f"{shown}; e.g. in features {item['feature_ids']}"
        )
    raise InvalidInput(
        "Unknown codes: "
        + "; ".join(parts)
        + ". Fix them, map another field, or upload with keep_unknown=true to store them as "
        "unknown.",
        code="unknown_codes",
        unknown_codes=report,
    )
