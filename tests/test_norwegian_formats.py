"""Files as kommuner have them (``data/norwegian-formats``): each imports with the right object
types, attributes and areas, or is refused with a message that names the fix; and plan files
built to the SOSI Plan and Plan 5.0 specifications import with their arealformål codes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.test_layers import upload

FORMATS = Path(__file__).resolve().parents[1] / "data" / "norwegian-formats"


def copy(name: str, tmp_path: Path) -> Path:
    """A private copy (GDAL's readers write index files beside what they read)."""
    target = tmp_path / Path(name).name
    shutil.copyfile(FORMATS / name, target)
    return target


def stored(database_url: str, version_id: int, key: str) -> dict[str, tuple[int, float]]:
    """Count and area (m²) of the stored features per value of an attribute."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT attrs->>%s, count(*), sum(ST_Area(geom)) FROM geoservice.feature "
            "WHERE version_id = %s GROUP BY 1",
            (key, version_id),
        ).fetchall()
    return {str(k): (int(n), float(a)) for k, n, a in rows}


def test_protected_areas_in_utf8_sosi_whose_header_says_iso8859_10(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """17 Naturvernområde areas in UTM 35 (KOORDSYS 25), stored as UTF-8 though the header
    says ISO8859-10: read as they are, names with their Norwegian letters."""
    response = upload(
        client,
        copy("sosijs-naturvernomraade/naturvernomraade.sos", tmp_path),
        kind="protected_areas",
        name="Naturvern Trøndelag",
    )
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 17
    assert result["source_crs"] == "EPSG:25835"
    assert result["field_map"]["navn"] == "navn"
    assert any("UTF-8" in note and "ISO8859-10" in note for note in result["source_notes"])
    names = stored(database_url, result["version_id"], "navn")
    assert any("ø" in n or "å" in n or "æ" in n for n in names)
    # Around Trondheimsfjorden once in EPSG:25833, though written in UTM zone 35
    lon_lat = client.get(f"/api/layers/{result['layer_id']}").json()
    assert lon_lat["kind"] == "protected_areas"
    with psycopg.connect(database_url) as conn:
        lon, lat = conn.execute(  # type: ignore[misc]
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid(ST_Collect(geom)), "
            "4326) c FROM geoservice.feature WHERE version_id = %s) t",
            (result["version_id"],),
        ).fetchone()
    assert 9.5 < lon < 11.5 and 63.0 < lat < 64.2


def test_n50_sosi_reads_its_object_types_as_classes(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """N50 SOSI names each land-cover area by object type (Skog, DyrketMark, ...). 352 areas;
    the one airport (Lufthavn) has no N50 class of ours: refused until kept as unknown."""
    path = copy("sosijs-n50-arealdekke/testfile2.sos", tmp_path)
    refused = upload(client, path, kind="land_cover", name="N50 Kristiansand")
    assert refused.status_code == 422
    assert "'Lufthavn' (1×)" in refused.json()["detail"]
    assert "keep_unknown=true" in refused.json()["detail"]
    response = upload(client, path, kind="land_cover", name="N50 Kristiansand", keep_unknown=True)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 352
    assert result["source_crs"] == "EPSG:25832"
    assert result["field_map"]["n50_klasse"] == "objekttypenavn"
    classes = stored(database_url, result["version_id"], "n50_klasse")
    # counts of the object types in the file: Skog 76, DyrketMark 18, Myr 12, Havflate 18
    assert classes["800"][0] == 76
    assert classes["600"][0] == 18
    assert classes["100"][0] == 12
    assert classes["400"][0] == 18
    # Innsjø 97 and ElvBekk 3 areas are both fresh water (code 200)
    assert classes["200"][0] == 100
    arealtype = stored(database_url, result["version_id"], "arealtype")
    assert arealtype["30"][0] == 76  # forest, through the documented crosswalk


def test_plan_boundary_file_with_bom_wrong_charset_and_no_slutt(
    client: TestClient, tmp_path: Path
) -> None:
    """A reguleringsplan's RpGrense lines (BUEP arcs included): refused as a plan, naming what
    it holds; read as a generic layer with each repair reported."""
    path = copy("sosijs-hemsedal-rpgrense/buer.sos", tmp_path)
    refused = upload(client, path, kind="land_use_plan", name="Hemsedal")
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "no areas (.FLATE)" in detail and "11 .KURVE, 10 .BUEP" in detail
    assert "RpGrense (21)" in detail and "RpArealformålOmråde" in detail
    response = upload(client, path, kind="generic", name="Hemsedal grenser")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 21
    assert result["source_crs"] == "EPSG:25832"
    notes = " | ".join(result["source_notes"])
    assert "byte-order mark" in notes and ".SLUTT" in notes and "UTF-8" in notes


def test_gdal_reindeer_route_keeps_its_area(client: TestClient, tmp_path: Path) -> None:
    response = upload(
        client,
        copy("gdal-sosi-reindrift/test_duplicate_fields.sos", tmp_path),
        kind="generic",
        name="Flyttelei",
    )
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 1  # the one Flyttelei area (17 boundary lines besides)
    assert result["source_crs"] == "EPSG:25833"
    assert result["bbox"][0] == pytest.approx(824411.45, abs=0.01)


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        (
            "dibk-testplan-his-arendal/gml.gmlid.1-2D-pass.gml",
            "land_use_plan",
            "None of them is RpArealformålOmråde or KpArealformålOmråde",
        ),
        ("dibk-testplan-his-arendal/gml.gmlid.1-3D-pass.gml", "generic", "TIN"),
        ("geosynk-planomriss-stjordal/41_changelog.xml", "generic", "Geosynkronisering"),
        (
            "ngis-ar5-json/ArealressursFlater_onlyPolygons.json",
            "land_cover",
            "converted from EPSG:25833 (UTM) coordinates as though they were EPSG:25832",
        ),
        ("ngis-ar5-json/ArealressursFlater_onlyLines.json", "land_cover", "ArealressursGrense"),
    ],
)
def test_files_that_cannot_be_used_as_they_are_say_what_to_do(
    client: TestClient, tmp_path: Path, name: str, kind: str, expected: str
) -> None:
    response = upload(client, copy(name, tmp_path), kind=kind, name="x")
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]


def test_plan_5_gml_test_plan_reads_its_plan_area(client: TestClient, tmp_path: Path) -> None:
    """The DiBK test plan read as a generic layer of its RpOmråde (the plan's outline)."""
    response = upload(
        client,
        copy("dibk-testplan-his-arendal/gml.gmlid.1-2D-pass.gml", tmp_path),
        kind="generic",
        name="HIS planområde",
        layer="RpOmråde",
    )
    assert response.status_code == 201, response.text
    assert response.json()["feature_count"] == 1
    assert response.json()["source_crs"] == "EPSG:25832"


# --- plan files written to the specifications ------------------------------------------------

# Two zones side by side in Ås (EPSG:25833), 100 m × 100 m and 100 m × 200 m.
ZONES = [
    (1110, "B1", [(262000, 6620000), (262100, 6620000), (262100, 6620100), (262000, 6620100)]),
    (5100, "L1", [(262100, 6620000), (262300, 6620000), (262300, 6620100), (262100, 6620100)]),
]


def sosi_plan(path: Path, *, koordsys: int = 23, komm: str = "3218") -> Path:
    """A SOSI 4.5 kommuneplan file (KpArealformålOmråde areas bounded by KpGrense lines) in
    ISO 8859-10, as planning systems write it."""
    lines = [
        ".HODE",
        "..TEGNSETT ISO8859-10",
        "..TRANSPAR",
        f"...KOORDSYS {koordsys}",
        "...ORIGO-NØ 0 0",
        "...ENHET 0.01",
        "..OMRÅDE",
        "...MIN-NØ 6619000 261000",
        "...MAX-NØ 6621000 263000",
        "..SOSI-VERSJON 4.5",
        "..SOSI-NIVÅ 4",
        "..OBJEKTKATALOG Plan 4.5",
    ]
    for i, (code, name, ring) in enumerate(ZONES):
        curve, area = 2 * i + 1, 2 * i + 2
        lines += [f".KURVE {curve}:", "..OBJTYPE KpGrense", "..NØ"]
        lines += [f"{round(y * 100)} {round(x * 100)}" for x, y in [*ring, ring[0]]]
        lines += [
            f".FLATE {area}:",
            "..OBJTYPE KpArealformålOmråde",
            f"..KPAREALFORMÅL {code}",
            "..PLANID 2023001",
            f"..KOMM {komm}",
            f'..OMRÅDENAVN "{name} Åsmyra"',
            f"..REF :{curve}",
            "..NØ",
            f"{round((ring[0][1] + 50) * 100)} {round((ring[0][0] + 50) * 100)}",
        ]
    lines.append(".SLUTT")
    path.write_bytes(("\n".join(lines) + "\n").encode("iso8859_10"))
    return path


def test_sosi_kommuneplan_imports_with_its_arealformal(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    response = upload(client, sosi_plan(tmp_path / "kpa.sos"), kind="land_use_plan", name="KPA Ås")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 2
    assert result["source_notes"] == []
    assert result["field_map"]["arealformal"] == "arealformål"
    assert result["field_map"]["feltnavn"] == "OMRÅDENAVN"
    zones = stored(database_url, result["version_id"], "arealformal")
    assert zones["1110"] == (1, pytest.approx(10_000, abs=0.01))
    assert zones["5100"] == (1, pytest.approx(20_000, abs=0.01))
    names = stored(database_url, result["version_id"], "feltnavn")
    assert set(names) == {"B1 Åsmyra", "L1 Åsmyra"}
    kommune = stored(database_url, result["version_id"], "kommunenummer")
    assert set(kommune) == {"3218"}


def gml_plan(path: Path) -> Path:
    """A Plan 5.0 (Reguleringsplanforslag) GML file with two RpArealformålOmråde."""
    ns = "http://skjema.geonorge.no/SOSI/produktspesifikasjon/Reguleringsplanforslag/5.0"
    members = []
    for i, (code, name, ring) in enumerate(ZONES, 1):
        pos = " ".join(f"{x} {y}" for x, y in [*ring, ring[0]])
        members.append(
            f"""<gml:featureMember><app:RpArealformålOmråde gml:id="f{i}">
  <app:område><gml:Polygon gml:id="p{i}" srsName="http://www.opengis.net/def/crs/EPSG/0/25833">
    <gml:exterior><gml:LinearRing><gml:posList>{pos}</gml:posList></gml:LinearRing></gml:exterior>
  </gml:Polygon></app:område>
  <app:arealformål>{code}</app:arealformål>
  <app:feltbetegnelse>{name}</app:feltbetegnelse>
  <app:eierform>1</app:eierform>
</app:RpArealformålOmråde></gml:featureMember>"""
        )
    path.write_text(
        f"""<?xml version="1.0" encoding="utf-8"?>
<gml:FeatureCollection xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:app="{ns}"
    gml:id="plan">
<gml:featureMember><app:Arealplan gml:id="a1"><app:plannavn>Testplan</app:plannavn>
</app:Arealplan></gml:featureMember>
{"".join(members)}
</gml:FeatureCollection>
""",
        encoding="utf-8",
    )
    return path


def test_plan_5_gml_takes_the_arealformal_areas_without_asking(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    response = upload(client, gml_plan(tmp_path / "plan.gml"), kind="land_use_plan", name="RP")
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    assert result["feature_count"] == 2
    zones = stored(database_url, result["version_id"], "arealformal")
    assert zones["1110"] == (1, pytest.approx(10_000, abs=0.01))
    assert zones["5100"] == (1, pytest.approx(20_000, abs=0.01))
    assert set(stored(database_url, result["version_id"], "feltnavn")) == {"B1", "L1"}


KOMMUNER = (
    Path(__file__).resolve().parents[1] / "data" / "kommuner-fylker-2024" / "Kommuner-M.geojson"
)


def test_a_plan_must_lie_in_the_kommune_it_names(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """A plan in EPSG:25833 uploaded as EPSG:25832 lands 340 km west, still in Norway: its
    KOMM 3218 (Ås) says it must lie in Ås, and the message names the CRS that puts it there."""
    boundaries = upload(client, KOMMUNER, kind="boundaries", name="Kommuner 2024")
    assert boundaries.status_code == 201, boundaries.text
    path = sosi_plan(tmp_path / "kpa.sos")
    wrong = upload(client, path, kind="land_use_plan", name="KPA Ås", crs="EPSG:25832")
    assert wrong.status_code == 422, wrong.text
    body = wrong.json()
    assert body["code"] == "outside_kommune"
    assert "kommune 3218 (Ås)" in body["detail"]
    assert "Read as EPSG:25833 it lies in Ås" in body["detail"]
    assert "crs=EPSG:25833" in body["detail"]
    # nothing was created
    layers = client.get("/api/layers").json()
    assert all(item["name"] != "KPA Ås" for item in layers["items"])
    # as labelled, it imports; an upload naming another kommune is refused
    assert upload(client, path, kind="land_use_plan", name="KPA Ås").status_code == 201
    elsewhere = upload(client, path, kind="land_use_plan", name="KPA Oslo", kommune="0301")
    assert elsewhere.status_code == 422
    assert "kommune 0301 (Oslo)" in elsewhere.json()["detail"]
    unknown = upload(client, path, kind="land_use_plan", name="KPA x", kommune="9999")
    assert unknown.status_code == 422 and "not in the active boundaries" in unknown.json()["detail"]


def test_ar5_file_geodatabase_zip_as_geonorge_delivers_it(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """FKB-AR5 from Geonorge: a zip holding a .gdb folder with the area layer beside the
    boundary lines (and a product sheet): the areas are taken without asking."""
    import zipfile

    import geopandas as gpd
    from shapely.geometry import LineString, box

    gdb = tmp_path / "Basisdata_3218_Aas_25833_FKB-AR5_FGDB.gdb"
    areas = gpd.GeoDataFrame(
        {"arealtype": [30, 60, 21], "skogbonitet": [14, 98, 98], "treslag": [31, 98, 98]},
        geometry=[box(262000 + 200 * i, 6620000, 262100 + 200 * i, 6620100) for i in range(3)],
        crs=25833,
    )
    areas.to_file(gdb, layer="fkb_ar5_omrade", driver="OpenFileGDB")
    lines = gpd.GeoDataFrame(
        {"avgrensingtype": [4206]},
        geometry=[LineString([(262000, 6620000), (262100, 6620000)])],
        crs=25833,
    )
    lines.to_file(gdb, layer="fkb_ar5_grense", driver="OpenFileGDB")
    archive = tmp_path / "Basisdata_3218_Aas_25833_FKB-AR5_FGDB.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("FKB-AR5_produktark.txt", "Produktark")
        for part in gdb.iterdir():
            zf.write(part, f"{gdb.name}/{part.name}")
    response = upload(client, archive, kind="land_cover", name="AR5 Ås")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["feature_count"] == 3
    assert result["field_map"]["arealtype"] == "arealtype"
    classes = stored(database_url, result["version_id"], "arealtype")
    assert classes == {
        "30": (1, pytest.approx(10_000)),
        "60": (1, pytest.approx(10_000)),
        "21": (1, pytest.approx(10_000)),
    }
    # a zip with something else in the .gdb folder is refused before anything is written
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("x.gdb/a00000001.gdbtable", b"\x03\x00\x00\x00")
        zf.writestr("x.gdb/evil.sh", "#!/bin/sh")
    refused = upload(client, bad, kind="land_cover", name="x")
    assert refused.status_code == 422 and "evil.sh" in refused.json()["detail"]
