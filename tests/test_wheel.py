"""The installed package works outside the checkout: its data files travel in the wheel.

The wheel is built from this checkout and installed into a fresh virtual environment in a
temporary folder; the dependencies come from the test environment's site-packages as a
plain path (its editable install of this checkout is not activated there). An assessment
with measured peat depth needs the code lists, the factor tables and the NINA samples.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.test_carbon import MIRE, X0, Y0, _probes, assess, landscape, utm  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import analyses, layers, core
from analyses.assessment import ProposalRequest, assess
from geoservice.database import create_db_engine
from geoservice.settings import Settings

engine = create_db_engine(sys.argv[1], Settings(database_url=sys.argv[1]))
request = ProposalRequest(
    name=None, footprint=json.loads(sys.argv[2]), crs="EPSG:25833", arealformal=1110,
    built_share=1.0, preset="svv-stock", peat_handling="excavated", alternatives={},
)
result = assess(engine, request, storage_srid=25833)
fp = result["footprints"][0]
print(json.dumps({
    "files": [analyses.__file__, layers.__file__, core.__file__],
    "depth": fp["peat_depth"]["mean_m"],
    "stock": fp["stock_t_c"]["central"],
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel of this checkout installed."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(where)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    [wheel] = where.glob("geoservice-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "analyses/data/peat-carbon-nina/gran_dataset_utf8.csv",
        "analyses/factors/norway_default.csv",
        "layers/codelists/arealformal.csv",
        "layers/data/norway_extent_25833.wkt",
        "migrations/versions/0001_baseline.py",
    ):
        assert shipped in names, shipped
    assert not any("node_modules" in n for n in names)
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with zipfile.ZipFile(wheel) as zf:  # what pip would unpack, without pip
        zf.extractall(target)
    (Path(target) / "test_dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n", encoding="utf-8"
    )
    return python


@pytest.mark.usefixtures("landscape")
def test_assessment_with_measured_peat_runs_from_the_installed_wheel(
    client: TestClient, database_url: str, installed: Path, tmp_path: Path
) -> None:
    _probes(client, tmp_path, [(X0 + x, Y0 + 1050, 200) for x in range(100, 2237, 400)])
    here = assess(client, utm(MIRE), built_share=1.0, preset="svv-stock")["footprints"][0]
    done = subprocess.run(
        [str(installed), "-c", SCRIPT, database_url, json.dumps(utm(MIRE))],
        cwd=tmp_path,  # not the checkout
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(str(ROOT) not in f for f in out["files"]), out["files"]
    assert out["depth"] == pytest.approx(2.0, abs=1e-9)
    assert out["stock"] == pytest.approx(here["stock_t_c"]["central"], rel=1e-9)
