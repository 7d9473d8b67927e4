"""``geoservice users ...`` and ``geoservice tokens ...``: who may do what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from core.errors import GeoServiceError
from geoservice import access
from geoservice.cli_words import cli_text
from geoservice.database import create_db_engine, resolve_database_url
from geoservice.settings import Settings

users_app = typer.Typer(help="Users of the API.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (sent as Authorization: Bearer).", no_args_is_help=True)
console = Console()
T = TypeVar("T")
err_console = Console(stderr=True)


def _run(action: Callable[[Engine], T]) -> T:
    """Run one action against the configured database; domain errors end the command."""
    settings = Settings()
    engine = create_db_engine(resolve_database_url(settings), settings)
    try:
        return action(engine)
    except GeoServiceError as exc:
        err_console.print(f"[bold red]error[/]: {cli_text(exc.detail)}")
        raise typer.Exit(code=1) from exc
    finally:
        engine.dispose()


def _write(
    command: str, action: Callable[[Engine], T], objects: Callable[[T], dict[str, Any]]
) -> T:
    """Run a write and record it in the audit log, as the API's writes are."""

    def audited(engine: Engine) -> T:
        result = action(engine)
        access.record_command(engine, command, objects(result))
        return result

    return _run(audited)


@users_app.command("add")
def add_user(name: str) -> None:
    """Add a user (then create tokens for it)."""
    _write("users add", lambda e: access.add_user(e, name), lambda _: {"user": name})
    console.print(f"user {name} added")


@tokens_app.command("create")
def create_token(
    user: Annotated[str, typer.Option(help="Existing user name")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(access.ROLES)}")],
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d, 12h, 2w; default: until revoked")
    ] = None,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    try:
        lifetime = access.parse_duration(expires) if expires else None
    except GeoServiceError as exc:
        err_console.print(f"[red]--expires: {exc.detail}[/red]")
        raise typer.Exit(2) from exc
    token_id, token = _write(
        "tokens create",
        lambda e: access.create_token(e, user, role, expires_in=lifetime),
        lambda made: {"token_id": made[0], "user": user, "role": role, "expires": expires},
    )
    until = f", valid for {expires}" if expires else ""
    err_console.print(
        f"token {token_id} for {user} ({role}{until}); keep it now, it is not shown again:"
    )
    print(token)


@tokens_app.command("revoke")
def revoke_token(token_id: int) -> None:
    """Revoke a token by its id (see `geoservice tokens list`)."""
    _write(
        "tokens revoke",
        lambda e: access.revoke_token(e, token_id),
        lambda _: {"token_id": token_id},
    )
    console.print(f"token {token_id} revoked")


@tokens_app.command("list")
def list_tokens() -> None:
    """Every token: id, user, role, prefix, created, revoked."""
    rows = _run(access.list_tokens)
    table = Table("id", "user", "role", "prefix", "created", "revoked")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["user"],
            r["role"],
            r["prefix"] + "…",
            r["created_at"].isoformat(timespec="seconds"),
            r["revoked_at"].isoformat(timespec="seconds") if r["revoked_at"] else "",
        )
    console.print(table)
