"""``gateway keys ...``: the gateway's signing keys."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.exc import IntegrityError

from gateway.cli.context import console, database, settings
from gateway.keys.models import KeyUse
from gateway.keys.store import KeyStore

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
