from pathlib import Path

import psycopg
import pyarrow as pa
import pyogrio
import pytest
from typer.testing import CliRunner

from geoservice.cli import app
from tests.test_layer_input import circle_wkb
from tests.test_layers import KOMMUNER, N50

runner = CliRunner()


def test_cli_import_list_export(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", database_url)
    monkeypatch.setenv("GEOSERVICE_DATA_DIR", str(tmp_path))
    result = runner.invoke(
        app, ["layers", "import", str(N50), "--kind", "land_cover", "--name", "n50"]
    )
    assert result.exit_code == 0, result.output
    assert "1286 features" in result.output
    assert "1286/1286" in result.output  # the progress bar reached the end

    listing = runner.invoke(app, ["layers", "list"])
    assert listing.exit_code == 0 and "n50" in listing.output and "1 of 1 layers" in listing.output

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM geoservice.layer WHERE name = 'n50'").fetchone()
    assert row is not None
    out = tmp_path / "out"
    exported = runner.invoke(
        app, ["layers", "export", str(row[0]), "--out", str(out), "--format", "geojson"]
    )
    assert exported.exit_code == 0, exported.output
    assert (out / "n50.geojson").stat().st_size > 100_000


def test_cli_reports_bad_input_without_traceback(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", database_url)
    result = runner.invoke(
        app,
        [
            "layers",
            "import",
            str(KOMMUNER),
            "--kind",
            "boundaries",
            "--name",
            "k",
            "--crs",
            "25833",
        ],
    )
    assert result.exit_code == 1
    assert "do not lie in Norway" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_cli_says_when_arcs_were_linearised(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", database_url)
    monkeypatch.setenv("GEOSERVICE_DATA_DIR", str(tmp_path))
    path = tmp_path / "arcs.gpkg"
    table = pa.table(
        {"geom": pa.array([circle_wkb(262_300, 6_620_050, 50)]), "arealformal": [1110]}
    )
    pyogrio.write_arrow(
        table, path, layer="arcs", driver="GPKG", geometry_name="geom",
        geometry_type="Unknown", crs="EPSG:25833",
    )  # fmt: skip
    result = runner.invoke(
        app, ["layers", "import", str(path), "--kind", "land_use_plan", "--name", "arcs"]
    )
    assert result.exit_code == 0, result.output
    assert "1 features" in result.output and "arcs linearised 1" in result.output
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT ST_GeometryType(f.geom) FROM geoservice.feature f JOIN geoservice.layer l "
            "ON l.active_version_id = f.version_id WHERE l.name = 'arcs'"
        ).fetchone()
    assert row is not None and row[0] == "ST_MultiPolygon"


def test_cli_help_loads_no_gdal_or_pandas() -> None:
    """`geoservice --help` answers without loading GDAL, pandas, geopandas or rasterio (a
    second of imports): those load when a command that reads files runs."""
    import subprocess
    import sys

    heavy = ("pyogrio", "pandas", "geopandas", "rasterio", "weasyprint", "folium")
    probe = f"import sys, geoservice.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
    helped = subprocess.run(
        [sys.executable, "-m", "geoservice", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "assess" in helped.stdout and "layers" in helped.stdout


def test_serve_says_what_to_do_when_the_port_is_taken() -> None:
    """Something already listens on the port: the service says so before starting anything
    (no database, no demo) and names the way out."""
    import socket

    from typer.testing import CliRunner

    from geoservice.cli import app

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = CliRunner().invoke(
            app,
            ["serve", "--host", "127.0.0.1", "--port", str(port), "--demo"],
            env={"GEOSERVICE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        )
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"Port {port} on 127.0.0.1 is already in use" in said
    assert f"--port {port + 1}" in said and "GEOSERVICE_PORT" in said


def test_cli_errors_name_its_own_flags(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layers speak to the API (crs=, check_extent=false); the CLI says --crs and
    --no-check-extent, and a bare .shp is told which of its parts to zip."""
    import geopandas as gpd
    from shapely.geometry import box

    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", database_url)
    frame = gpd.GeoDataFrame(
        {"ARTYPE": [30]}, geometry=[box(262000, 6620000, 262100, 6620100)], crs=25833
    )
    frame.to_file(tmp_path / "ar5.shp")
    (tmp_path / "ar5.shx").unlink()
    (tmp_path / "ar5.prj").unlink()
    bare = runner.invoke(
        app, ["layers", "import", str(tmp_path / "ar5.shp"), "--kind", "land_cover", "--name", "a"]
    )
    assert bare.exit_code == 1
    said = " ".join(bare.output.split())
    assert "zip it together with ar5.shx, ar5.dbf, ar5.prj" in said
    assert "no .shx, .prj" in said
    frame.to_crs(4326).to_file(tmp_path / "ar5.geojson")
    wrong = runner.invoke(
        app,
        [
            "layers",
            "import",
            str(tmp_path / "ar5.geojson"),
            "--kind",
            "land_cover",
            "--name",
            "a",
            "--crs",
            "EPSG:25833",
        ],
    )
    assert wrong.exit_code == 1
    said = " ".join(wrong.output.split())
    assert "--crs EPSG:4326" in said and "--no-check-extent" in said
    assert "crs=EPSG" not in said and "check_extent=" not in said
