"""The ``geoservice`` command line: run the service, manage its database and schema."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core import __version__
from core.errors import GeoServiceError, InvalidInput
from geoservice.cli_access import tokens_app, users_app
from geoservice.cli_carbon import assess_cmd, plans_cmd
from geoservice.cli_land_account import land_account_cmd
from geoservice.cli_layers import app as layers_app
from geoservice.cli_maps import app as maps_app
from geoservice.cli_national import app as national_app
from geoservice.cli_restoration import app as restoration_app
from geoservice.cli_words import cli_text
from geoservice.database import embedded_cluster, resolve_database_url
from geoservice.settings import Settings

app = typer.Typer(
    help="Carbon-aware land-use planning service for Norwegian municipalities.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The embedded PostGIS cluster (used when DATABASE_URL is unset).")
app.add_typer(db_app, name="db")
app.add_typer(layers_app, name="layers")
app.command("assess")(assess_cmd)
plans_app = typer.Typer(help="Plan-level carbon analysis.", no_args_is_help=True)
plans_app.command("analyse")(plans_cmd)
app.add_typer(plans_app, name="plans")
app.command("arealregnskap")(land_account_cmd)
app.add_typer(restoration_app, name="restoration")
app.add_typer(maps_app, name="map")
app.add_typer(national_app, name="national")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
console = Console()
err_console = Console(stderr=True)


def _fail(exc: GeoServiceError) -> typer.Exit:
    err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
    return typer.Exit(code=1)


def _check_port(host: str, port: int) -> None:
    """Refuse at once, saying what to do, when something already listens where we would."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise InvalidInput(
                f"Port {port} on {host} is already in use: is the service already running? "
                f"(`ss -ltnp | grep :{port}` shows what holds it.) Stop that program, or "
                f"choose another port: --port {port + 1} or GEOSERVICE_PORT={port + 1}.",
                code="port_in_use",
            ) from exc


def _version(value: bool) -> None:
    if value:
        console.print(f"geoservice {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Carbon-aware land-use planning service."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    migrate_on_start: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations first.")
    ] = True,
    demo: Annotated[bool, typer.Option(help="Load the demo layers first.")] = False,
) -> None:
    """Run the HTTP service (starting the embedded PostGIS when DATABASE_URL is unset)."""
    import uvicorn

    from geoservice.app import create_app
    from geoservice.logs import configure, uvicorn_log_config

    settings = Settings()
    configure(json_lines=settings.log_format == "json")
    overrides: dict[str, object] = {"migrate_on_start": migrate_on_start}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    started_embedded = False
    try:
        _check_port(
            str(overrides.get("host", settings.host)),
            int(str(overrides.get("port", settings.port))),
        )
        if not settings.database_url:
            cluster = embedded_cluster(settings)
            started_embedded = not cluster.is_running() if cluster.initialized else True
            overrides["database_url"] = cluster.start()
            console.print(f"embedded PostGIS running in {cluster.root}")
        settings = settings.model_copy(update=overrides)
        shown = _load_demo(settings) if demo else None
        if demo:
            update: dict[str, object] = {"migrate_on_start": False}
            if "GEOSERVICE_PUBLIC_READS" not in os.environ:
                update["public_reads"] = True  # so the demo maps open in a browser
            settings = settings.model_copy(update=update)
        base = f"http://{settings.host}:{settings.port}"
        console.print(f"health:    {base}/healthz")
        console.print(f"API:       {base}/docs")
        console.print(f"layers:    {base}/api/layers   OGC API: {base}/ogc")
        if shown is not None:
            for pid in shown.proposals:
                console.print(f"proposal:  {base}/api/proposals/{pid}  (report: .../{pid}/report)")
            console.print(f"restoration: {base}/api/restoration/progress?region=3218")
            console.print("maps:")
            console.print(f"  land cover:  {base}/maps/layers/{shown.land_cover_layer}")
            console.print(f"  proposal:    {base}/maps/proposals/{shown.proposals[0]}")
            console.print(f"  plan:        {base}/maps/plans/{shown.plan_layer}")
            console.print(f"  restoration: {base}/maps/restoration")
            console.print("tokens (Authorization: Bearer <token>; shown once, new at each start):")
            for role, token in shown.tokens.items():
                console.print(f"  {role:<10} {token}")
            if settings.public_reads:
                console.print(
                    "reads are public in the demo (GEOSERVICE_PUBLIC_READS=false to close)"
                )
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            timeout_keep_alive=settings.keep_alive_s,
            log_config=uvicorn_log_config(),
        )
    except GeoServiceError as exc:
        raise _fail(exc) from exc
    finally:
        if started_embedded:
            embedded_cluster(settings).stop()
            console.print("embedded PostGIS stopped")


@dataclass(frozen=True)
class DemoShown:
    """What the demo loaded that the start-up message links to."""

    proposals: list[int]
    land_cover_layer: int
    plan_layer: int
    tokens: dict[str, str]


def _load_demo(settings: Settings) -> DemoShown:
    from geoservice import access, migrate
    from geoservice.database import create_db_engine
    from geoservice.demo import (
        DEMO_LAYERS,
        demo_tokens,
        load_demo,
        load_demo_plan_analysis,
        load_demo_proposals,
        load_demo_restoration,
    )

    url = resolve_database_url(settings)
    migrate.upgrade(url)
    engine = create_db_engine(url, settings)
    try:
        with console.status("loading demo data"):
            layer_ids = load_demo(engine, settings, say=console.print)
            by_kind = {item.kind: lid for item, lid in zip(DEMO_LAYERS, layer_ids, strict=True)}
            projects = load_demo_restoration(engine, settings, say=console.print)
            proposals = load_demo_proposals(engine, settings, say=console.print)
            load_demo_plan_analysis(engine, by_kind["land_use_plan"], say=console.print)
        tokens = demo_tokens(engine)
        # The demo's writes are audited like any other command-line write (never the tokens).
        access.record_command(
            engine,
            "demo",
            {
                "layer_ids": layer_ids,
                "restoration_projects": projects,
                "proposal_ids": proposals,
                "tokens_issued_for": sorted(tokens),
            },
        )
        return DemoShown(proposals, by_kind["land_cover"], by_kind["land_use_plan"], tokens)
    finally:
        engine.dispose()


@app.command()
def demo() -> None:
    """Load the demo layers (municipalities, N50 land cover for Ås, Follo nature types)."""
    try:
        _load_demo(Settings())
    except GeoServiceError as exc:
        raise _fail(exc) from exc


@app.command("migrate")
def migrate_cmd(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    downgrade: Annotated[
        bool, typer.Option("--downgrade", help="Go down to REVISION instead of up.")
    ] = False,
) -> None:
    """Bring the database schema to a revision (default: the newest)."""
    try:
        url = resolve_database_url(Settings())
    except GeoServiceError as exc:
        raise _fail(exc) from exc
    from geoservice import migrate  # alembic is slow to import; most commands never need it

    if downgrade:
        migrate.downgrade(url, revision)
    else:
        migrate.upgrade(url, revision)
    console.print(
        f"schema at {'revision ' + revision if revision != 'head' else 'head'} "
        f"({migrate.head_revision()} is the newest)"
    )


@db_app.command("start")
def db_start() -> None:
    """Create (first time) and start the embedded cluster."""
    settings = Settings()
    if settings.database_url:
        console.print("DATABASE_URL is set: the embedded cluster is not used.")
        return
    try:
        cluster = embedded_cluster(settings)
        url = cluster.start()
    except GeoServiceError as exc:
        raise _fail(exc) from exc
    console.print(f"embedded PostGIS running: {_redact(url)}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster; its data stays in the data directory."""
    try:
        was_running = embedded_cluster(Settings()).stop()
    except GeoServiceError as exc:
        raise _fail(exc) from exc
    console.print("stopped" if was_running else "not running")


@db_app.command("status")
def db_status() -> None:
    """Show whether the embedded cluster exists and runs, and where."""
    settings = Settings()
    try:
        st = embedded_cluster(settings).status()
    except GeoServiceError as exc:
        raise _fail(exc) from exc
    table = Table(show_header=False)
    table.add_row("directory", str(st.directory))
    table.add_row("initialised", "yes" if st.initialized else "no")
    table.add_row("running", "yes" if st.running else "no")
    table.add_row("port", str(st.port) if st.port else "-")
    table.add_row("url", _redact(st.url) if st.url else "-")
    table.add_row("postgres binaries", str(st.postgres_bin) if st.postgres_bin else "-")
    if settings.database_url:
        table.add_row("note", "DATABASE_URL is set, so the service does not use this cluster")
    console.print(table)
    if not st.running:
        raise typer.Exit(code=3)


def _redact(url: str) -> str:
    """Hide the password when printing a URL."""
    scheme, _, rest = url.partition("://")
    creds, at, hostpart = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}"
