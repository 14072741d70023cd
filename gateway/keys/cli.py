"""``gateway keys ...``: the gateway's signing keys."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.exc import IntegrityError

from gateway.cli.context import console, database, settings
from gateway.keys.models import KeyUse
from gateway.keys.store import KeyStore, pinned_jwks

keys_app = typer.Typer(help="The gateway's signing keys.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@keys_app.command("rotate")
def keys_rotate(
    use: Annotated[KeyUse, typer.Option(help="Which key to replace.")] = KeyUse.TOKEN,
    as_json: JsonFlag = False,
) -> None:
    """Make a new current key; the old one stays published while its signatures need it."""
    store = KeyStore(settings())
    try:
        with database().sync_session() as session, session.begin():
            key = store.rotate(session, use)
    except IntegrityError:
        detail = "Another rotation of this key use ran at the same time; run it again."
        if as_json:
            typer.echo(json.dumps({"error": {"code": "keys.rotation_conflict", "detail": detail}}))
        else:
            console(stderr=True).print(f"[red]Error[/red]: {detail}")
        raise typer.Exit(1) from None
    payload = {"use": key.use.value, "kid": key.kid, "alg": key.alg}
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        console().print(f"New {key.use.value} key {key.kid} ({key.alg}) is now current.")


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """List signing keys: current, retired but still published, retired."""
    store = KeyStore(settings())
    with database().sync_session() as session:
        keys = store.list_keys(session)
    rows = [
        {
            "kid": key.kid,
            "use": key.use.value,
            "alg": key.alg,
            "created_at": key.created_at.isoformat(),
            "retired_at": key.retired_at.isoformat() if key.retired_at else None,
            "published": key.published,
        }
        for key in keys
    ]
    if as_json:
        typer.echo(json.dumps({"keys": rows}))
        return
    table = Table("use", "kid", "alg", "created", "retired", "published")
    for row in rows:
        table.add_row(
            str(row["use"]),
            str(row["kid"]),
            str(row["alg"]),
            str(row["created_at"]),
            str(row["retired_at"] or ""),
            "yes" if row["published"] else "no",
        )
    console().print(table)


@keys_app.command("export")
def keys_export(
    use: Annotated[KeyUse, typer.Option(help="Which keys to export.")] = KeyUse.AUDIT,
) -> None:
    """Print the keys of a use this deployment provably made, as a JWK set to keep elsewhere.

    Keep the file away from the database (and export again after each rotation):
    `gateway audit verify --trusted-keys FILE` checks the audit trail against it, without the
    master key. Each retired key carries its retirement time as "retired_at".
    """
    store = KeyStore(settings())
    with database().sync_session() as session:
        keys = store.trusted(session, use)
    typer.echo(json.dumps(pinned_jwks(keys)))
