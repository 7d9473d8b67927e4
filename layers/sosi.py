"""SOSI files as kommuner have them, read by GDAL's SOSI driver.

pyogrio's bundled GDAL has no SOSI driver; Debian's GDAL has (``gdal-bin``, built with
fyba), so a SOSI upload is converted by its ``ogr2ogr`` into a GeoPackage that the one reader
(:mod:`layers.reader`) then opens like any other. Geometry and attributes are read by that
driver only. Here we read the header and count object lines, for three reasons:

* Users' files often do not open as they are: a UTF-8 file whose header says
  ``..TEGNSETT ISO8859-10``, a byte-order mark, no closing ``.SLUTT``. The driver reads only
  the single-byte encodings, so the text is decoded as what it really is and written again
  as ISO 8859-10 with a header that says so; each such repair is reported to the uploader.
* The CRS comes from ``...KOORDSYS`` through the SOSI standard's table
  (``data/sosi_koordsys.csv``); the driver's own choice has northing-first axes.
* A file without areas (a plan's boundary lines only) is refused naming what it holds.

``ogr2ogr`` runs as a child process with fixed arguments (the paths are ours, never a user's
string), every other input driver skipped so nothing else can claim the file, GDAL's network
and indirection switched off, and limits on memory and time.
"""

from __future__ import annotations

import csv
import os
import re
import resource
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from core.errors import InvalidInput

HERE = Path(__file__).resolve().parent
OGR2OGR_CANDIDATES = ("/usr/bin/ogr2ogr", "/usr/local/bin/ogr2ogr")
TIMEOUT_S = 600
MEMORY_LIMIT = 4 << 30
WRITTEN_AS = "ISO8859-10"
# ..TEGNSETT values and the Python codecs that read them. ND7 is Norwegian 7-bit ISO 646.
CODECS = {
    "ISO8859-1": "latin-1",
    "ISO8859-10": "iso8859_10",
    "ANSI": "cp1252",
    "DOSN8": "cp865",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "ND7": "ascii",
}
_ND7 = str.maketrans("[\\]{|}", "ÆØÅæøå")
_OBJECT = re.compile(r"^\.(FLATE|KURVE|BUEP|BUE|LINJE|KLOTOIDE|PUNKT|SVERM|TEKST|TRASE)\b", re.M)
_OBJTYPE = re.compile(r"^\.\.OBJTYPE\s+(\S+)", re.M)
_TEGNSETT = re.compile(r"^\.\.TEGNSETT[ \t]+(\S+)[^\r\n]*", re.M)
_KOORDSYS = re.compile(r"^\.\.\.KOORDSYS[ \t]+(-?\d+)", re.M)
_SLUTT = re.compile(r"^\.SLUTT\b", re.M)
_HODE = re.compile(r"\A(?:\s*!.*\n|\s*\n)*\s*\.HODE\b")
GEOMETRY_LAYERS = {
    "polygons": ("FLATE",),
    "points": ("PUNKT", "SVERM"),
    "lines": ("KURVE", "BUEP", "BUE", "LINJE", "KLOTOIDE"),
}


@dataclass(frozen=True)
class SosiFile:
    """A SOSI upload converted for the reader, and what was done to it."""

    path: Path
    layer: str
    epsg: int
    notes: list[str] = field(default_factory=list)
    objects: dict[str, int] = field(default_factory=dict)
    object_types: dict[str, int] = field(default_factory=dict)


@cache
def koordsys_table() -> dict[int, tuple[int, str]]:
    """SOSI ``KOORDSYS`` code → (EPSG code, name), from the SOSI standard's table."""
    with (HERE / "data" / "sosi_koordsys.csv").open(encoding="utf-8") as fh:
        return {int(r["koordsys"]): (int(r["epsg"]), r["name"]) for r in csv.DictReader(fh)}


def ogr2ogr() -> str | None:
    """Debian's ogr2ogr (GDAL with the SOSI driver), if installed."""
    for candidate in OGR2OGR_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("ogr2ogr")


@cache
def other_drivers(program: str) -> tuple[str, ...]:
    """Every driver of that GDAL except SOSI (the reader) and GPKG (the writer): switched off
    for the conversion, so that nothing but the SOSI driver can claim the file (``-if`` is
    GDAL 3.7+; Debian 12 has 3.6)."""
    listed = subprocess.run(
        [program, "--formats"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    names = (m.group(1) for m in re.finditer(r"^\s+(.+?) -(?:raster|vector)", listed, re.M))
    return tuple(sorted({n.strip() for n in names} - {"SOSI", "GPKG"}))


def looks_like_sosi(head: bytes) -> bool:
    """A SOSI file starts with ``.HODE`` (after a byte-order mark, blank or ``!`` lines)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return _HODE.match(head.decode("latin-1")) is not None


def decode(raw: bytes, shown: str) -> tuple[str, list[str]]:
    """The text of a SOSI file decoded as what it is, and notes on where that differs from
    what its header says."""
    notes: list[str] = []
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        notes.append("removed the byte-order mark at the start of the file")
        bom = True
    else:
        bom = False
    head = raw[:65536].decode("latin-1")
    match = _TEGNSETT.search(head)
    declared = match.group(1).upper() if match else None
    if declared is not None and declared not in CODECS:
        raise InvalidInput(
            f"{shown}: the header says ..TEGNSETT {declared}, a character set we cannot read. "
            f"Export the file with one of {', '.join(sorted(CODECS))}.",
            code="sosi_charset",
        )
    if raw.isascii():
        text = raw.decode("ascii")
        return (text.translate(_ND7) if declared == "ND7" else text), notes
    try:
        text = raw.decode("utf-8")
        actual = "UTF-8"
    except UnicodeDecodeError:
        if declared in ("UTF-8", "UTF8") or bom:
            raise InvalidInput(
                f"{shown}: the file is not valid UTF-8 although "
                + ("it starts with a UTF-8 byte-order mark" if bom else "its header says so")
                + ". Export it again as UTF-8 or ISO8859-10, and make the header's "
                "..TEGNSETT say which.",
                code="sosi_charset",
            ) from None
        codec = CODECS[declared or WRITTEN_AS]
        if codec == "ascii":
            raise InvalidInput(
                f"{shown}: the header says ..TEGNSETT ND7 (7-bit) but the file has 8-bit "
                "characters. Export it again and make ..TEGNSETT say the real character set.",
                code="sosi_charset",
            ) from None
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{shown}: byte {exc.start} is not a character of {declared}, the header's "
                "..TEGNSETT. Export the file again and make ..TEGNSETT say the real character "
                "set.",
                code="sosi_charset",
            ) from None
        actual = declared or WRITTEN_AS
        if declared is None:
            notes.append(f"the header names no ..TEGNSETT: read as {WRITTEN_AS}")
    if declared not in (None, actual) and not (declared == "UTF8" and actual == "UTF-8"):
        notes.append(
            f"the text is {actual} although the header says ..TEGNSETT {declared}: read as {actual}"
        )
    return text, notes


def normalise(text: str, shown: str) -> tuple[str, list[str]]:
    """The text with a header that says ISO8859-10 and a closing ``.SLUTT``."""
    notes: list[str] = []
    if _HODE.match(text) is None:
        raise InvalidInput(
            f"{shown} is not a SOSI file: it must start with .HODE.", code="format_mismatch"
        )
    line = f"..TEGNSETT {WRITTEN_AS}"
    if _TEGNSETT.search(text):
        text = _TEGNSETT.sub(line, text, count=1)
    else:
        text = re.sub(r"^(\s*\.HODE[^\r\n]*)", lambda m: f"{m.group(1)}\n{line}", text, count=1)
    if _SLUTT.search(text) is None:
        text = text.rstrip() + "\n.SLUTT\n"
        notes.append("the file had no .SLUTT at the end: added")
    return text, notes


def encode(text: str, shown: str) -> bytes:
    """ISO 8859-10 bytes for GDAL's reader; a character it cannot hold is refused by line."""
    try:
        return text.encode("iso8859_10")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise InvalidInput(
            f"{shown}, line {line}: the character {text[exc.start]!r} cannot be read by the SOSI "
            "reader (it takes the Nordic ISO 8859-10 letters, Sámi letters included). Replace "
            "it and upload again.",
            code="sosi_charset",
        ) from None


def epsg_of(text: str, shown: str) -> int:
    """The EPSG code of the file's ``...KOORDSYS``."""
    match = _KOORDSYS.search(text[:65536])
    if match is None:
        raise InvalidInput(
            f"{shown}: the header has no ...KOORDSYS, so the coordinate system is unknown. "
            "Export the file with its ..TRANSPAR block (KOORDSYS 22 or 23 for EUREF89 UTM 32/33).",
            code="missing_crs",
        )
    code = int(match.group(1))
    table = koordsys_table()
    if code not in table:
        known = ", ".join(f"{k} ({v[1]})" for k, v in sorted(table.items()) if 19 <= k <= 26)
        raise InvalidInput(
            f"{shown}: ...KOORDSYS {code} is not a coordinate system we can read. Export the "
            f"file in EUREF89 UTM: {known}.",
            code="bad_crs",
        )
    return table[code][0]


def _limits() -> None:  # pragma: no cover - runs in the child process
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (TIMEOUT_S, TIMEOUT_S))


def _summary(objects: dict[str, int], types: dict[str, int]) -> str:
    parts = ", ".join(f"{n} .{k}" for k, n in sorted(objects.items(), key=lambda kv: -kv[1]))
    named = ", ".join(f"{k} ({n})" for k, n in sorted(types.items(), key=lambda kv: -kv[1])[:6])
    return f"{parts or 'no objects'}" + (f"; object types {named}" if named else "")


def convert(
    path: Path,
    workdir: Path,
    *,
    display_name: str | None = None,
    layer: str | None = None,
    needs: str | None = None,
) -> SosiFile:
    """Convert a SOSI file into ``workdir/sosi.gpkg`` (one layer: ``layer``, else the areas,
    else the points, else the lines); ``needs="polygon"`` refuses a file without areas."""
    shown = display_name or path.name
    from layers.gdal_env import SAFE_CONFIG  # the same switches as our own GDAL

    text, notes = decode(path.read_bytes(), shown)
    text, more = normalise(text, shown)
    notes += more
    epsg = epsg_of(text, shown)
    counted = Counter(m.group(1) for m in _OBJECT.finditer(text))
    objects = dict(counted)
    types = dict(Counter(m.group(1) for m in _OBJTYPE.finditer(text)))
    per_layer = {name: sum(counted[k] for k in keys) for name, keys in GEOMETRY_LAYERS.items()}
    if layer is not None and layer not in GEOMETRY_LAYERS:
        raise InvalidInput(
            f"{shown} has no layer {layer!r}; a SOSI file is read as the layers "
            f"{', '.join(GEOMETRY_LAYERS)}.",
            code="unknown_layer",
            layers=list(GEOMETRY_LAYERS),
        )
    chosen = layer or next((n for n in ("polygons", "points", "lines") if per_layer[n]), None)
    if chosen is None or per_layer[chosen] == 0:
        raise InvalidInput(
            f"{shown} holds no {'objects' if chosen is None else chosen} to import "
            f"({_summary(objects, types)}).",
            code="empty_file",
        )
    if needs == "polygon" and chosen != "polygons":
        raise InvalidInput(
            f"{shown} holds no areas (.FLATE): {_summary(objects, types)}. This layer needs "
            "areas; for a plan, export its arealformål areas (KpArealformålOmråde or "
            "RpArealformålOmråde), not only its boundary lines.",
            code="sosi_no_areas",
        )
    program = ogr2ogr()
    if program is None:
        raise RuntimeError(
            "SOSI files need GDAL's ogr2ogr with the SOSI driver (Debian: apt install gdal-bin); "
            "scripts/bootstrap.sh installs it."
        )
    source = workdir / "sosi.sos"
    source.write_bytes(encode(text, shown))
    target = workdir / "sosi.gpkg"
    cmd = [program, "-f", "GPKG", "-a_srs", f"EPSG:{epsg}"]
    cmd += ["-nln", chosen, str(target), str(source), chosen]
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "CPL_DEBUG": "OFF",
        **SAFE_CONFIG,
        "GDAL_SKIP": ",".join(other_drivers(program)),
    }
    try:
        done = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            preexec_fn=_limits,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput(
            f"{shown} took more than {TIMEOUT_S // 60} minutes to read; split it and upload "
            "the parts.",
            code="sosi_too_slow",
        ) from None
    if done.returncode != 0 or not target.exists():
        said = " ".join(
            line.removeprefix("ERROR 1: ").strip()
            for line in done.stderr.splitlines()
            if line.startswith(("ERROR", "Error"))
        ).replace(str(source), shown)
        raise InvalidInput(
            f"{shown} could not be read as SOSI: {said or 'the reader stopped'} "
            f"({_summary(objects, types)}). Check the file in a SOSI tool (SOSI-kontroll) and "
            "export it again.",
            code="corrupt_file",
        )
    return SosiFile(
        path=target,
        layer=chosen,
        epsg=epsg,
        notes=notes,
        objects=objects,
        object_types=types,
    )
