"""Run every ``bench/bench_*.py`` (or those named on the command line) and write the results."""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    lines = [
        f"# Benchmarks ({meta['when']})",
        "",
        f"Machine: {meta['machine']}, {meta['cpus']} CPUs, Python {meta['python']}",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
    ]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(names: list[str]) -> None:
    """Import each benchmark module, call its ``run()``, collect the rows."""
    import os

    modules = names or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    rows: list[dict[str, Any]] = []
    for name in modules:
        print(f"running {name} ...", flush=True)
        t0 = time.perf_counter()
        module = importlib.import_module(f"bench.bench_{name}")
        rows.extend(module.run())
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    summary = _markdown(rows, meta)
    (RESULTS / "latest.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main(sys.argv[1:])
