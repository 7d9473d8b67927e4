"""Demo data: real public layers (with their attribution) loaded into an empty service."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from analyses.assessment import ProposalRequest, assess
from geoservice.settings import Settings
from layers.ingest import ImportOptions, import_file, sha256_of

DEMO_DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class DemoLayer:
    """One demo file and how to load it."""

    path: str
    kind: str
    name: str
    licence: str


DEMO_LAYERS = (
    DemoLayer(
        "kommuner-fylker-2024/Kommuner-M.geojson",
        "boundaries",
        "Kommuner 2024",
        "© Kartverket (CC BY 4.0), via github.com/robhop/fylker-og-kommuner",
    ),
    DemoLayer(
        "kommuner-fylker-2024/Fylker-M.geojson",
        "boundaries",
        "Fylker 2024",
        "© Kartverket (CC BY 4.0), via github.com/robhop/fylker-og-kommuner",
    ),
    DemoLayer(
        "n50-arealdekke-aas/ArealdekkeN50.gpkg",
        "land_cover",
        "N50 arealdekke Ås",
        "© Kartverket, N50 Kartdata (CC BY 4.0)",
    ),
    DemoLayer(
        "demo/kommuneplan_aas_eksempel.geojson",
        "land_use_plan",
        "Kommuneplan Ås (EKSEMPEL)",
        "Example zones made for the demo over © Kartverket N50 (CC BY 4.0); not a real plan",
    ),
    DemoLayer(
        "demo/forringet_areal_aas_eksempel.geojson",
        "degraded_areas",
        "Forringet areal Ås (EKSEMPEL)",
        "Example baseline made for the demo from © Kartverket N50 (CC BY 4.0); not real data",
    ),
    DemoLayer(
        "naturtyper-nin-follo/naturtyper_nin_follo_sample.geojson",
        "nature_types",
        "Naturtyper NiN Follo (utvalg)",
        "Data © Miljødirektoratet (Naturtyper etter Miljødirektoratets instruks); sample via "
        "NINA eaTools (MIT)",
    ),
)


def load_demo(engine: Engine, settings: Settings, say: Callable[[str], None] = print) -> list[int]:
    """Load each demo layer unless its active version already holds the same file."""
    layer_ids = []
    for item in DEMO_LAYERS:
        path = DEMO_DATA / item.path
        checksum = sha256_of(path)
        with engine.connect() as conn:
            existing = conn.execute(
                text(
                    "SELECT l.id FROM geoservice.layer l JOIN geoservice.layer_version v "
                    "ON v.id = l.active_version_id WHERE l.name = :n AND v.source_sha256 = :s"
                ),
                {"n": item.name, "s": checksum},
            ).scalar()
        if existing is not None:
            layer_ids.append(int(existing))
            continue
        result = import_file(
            engine,
            path,
            ImportOptions(kind=item.kind, name=item.name, licence=item.licence, uploader="demo"),
            storage_srid=settings.storage_srid,
        )
        say(f"demo layer {item.name!r}: {result.feature_count} features")
        layer_ids.append(result.layer_id)
    return layer_ids


def load_demo_proposals(
    engine: Engine, settings: Settings, say: Callable[[str], None] = print
) -> list[int]:
    """Assess the example proposals once (they are stored like any other assessment)."""
    examples = json.loads((DEMO_DATA / "demo" / "forslag_eksempel.json").read_text("utf-8"))
    ids = []
    for example in examples:
        with engine.connect() as conn:
            existing = conn.execute(
                text("SELECT id FROM geoservice.proposal WHERE name = :n ORDER BY id LIMIT 1"),
                {"n": example["name"]},
            ).scalar()
        if existing is None:
            result = assess(engine, ProposalRequest(**example), storage_srid=settings.storage_srid)
            existing = result["id"]
            central = result["footprints"][0]["emission_t_co2e"].get("central", 0)
            say(f"demo proposal {example['name']!r}: {central:,.0f} t CO2e if built")
        ids.append(int(existing))
    return ids


def load_demo_restoration(
    engine: Engine, settings: Settings, say: Callable[[str], None] = print
) -> int:
    """Register the example restoration projects once; returns how many the registry holds."""
    from analyses.restoration import import_projects
    from layers.reader import read_vector_file

    with engine.connect() as conn:
        existing = conn.execute(
            text(
                "SELECT count(*) FROM geoservice.restoration_project_history "
                "WHERE data->>'name' LIKE '%(eksempel)'"
            )
        ).scalar_one()
    if existing:
        return int(existing)
    path = DEMO_DATA / "demo" / "restaureringsprosjekter_aas_eksempel.geojson"
    with tempfile.TemporaryDirectory() as workdir:
        features, crs = read_vector_file(path, Path(workdir))
    ids = import_projects(
        engine, features, crs=crs or "EPSG:25833", srid=settings.storage_srid, user="demo"
    )
    say(f"demo restoration projects: {len(ids)}")
    return len(ids)


def load_demo_plan_analysis(
    engine: Engine, plan_layer_id: int, say: Callable[[str], None] = print
) -> int:
    """Analyse the example plan once, returning its highest-emission zone to LNFR."""
    from analyses.jobs import create_job, latest_result, run_job
    from analyses.plans import analyse_plan

    done = latest_result(engine, plan_layer_id)
    if done is not None:
        return int(done["analysis_id"])
    first = analyse_plan(engine, plan_layer_id)
    top = first["ranking_by_emission"][:1]
    job_id = create_job(engine, plan_layer_id, {"rezone": top})
    run_job(engine, job_id)
    say(f"demo plan analysis {job_id}: zone(s) {top} returned to LNFR in the scenario")
    return job_id


def demo_tokens(engine: Engine) -> dict[str, str]:
    """A fresh token for each role (users demo-<role>); the demo's older tokens are revoked."""
    from geoservice import access

    tokens = {}
    for role in access.ROLES:
        user = f"demo-{role}"
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO geoservice.app_user (name) VALUES (:u) ON CONFLICT DO NOTHING"),
                {"u": user},
            )
            conn.execute(
                text(
                    "UPDATE geoservice.api_token SET revoked_at = now() WHERE revoked_at IS NULL "
                    "AND user_id = (SELECT id FROM geoservice.app_user WHERE name = :u)"
                ),
                {"u": user},
            )
        tokens[role] = access.create_token(engine, user, role)[1]
    return tokens
