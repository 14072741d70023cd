"""Top-level commands (serve, db) and the registration of each domain's command group."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
import uvicorn

from gateway.app import SchemaBehindError, ensure_schema_current
from gateway.audit.cli import audit_app
from gateway.audit.sealer_process import sealer_process
from gateway.cli.context import console, database, settings
from gateway.cli.demo import demo_command
from gateway.console.cli import staff_app
from gateway.contracts.cli import contracts_app, openapi_command
from gateway.keys.cli import keys_app
from gateway.logging import configure_logging
from gateway.migrate import schema_state, upgrade
from gateway.partners.cli import clients_app, habilitations_app, partners_app
from gateway.reference.cli import ingest_app, seed_command
from gateway.settings import get_settings

app = typer.Typer(
    name="gateway",
    help="The tell-us-once data-exchange gateway.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
app.add_typer(audit_app, name="audit")
app.add_typer(partners_app, name="partners")
app.add_typer(clients_app, name="clients")
app.add_typer(habilitations_app, name="habilitations")
app.add_typer(keys_app, name="keys")
app.add_typer(staff_app, name="staff")
app.command("seed")(seed_command)
app.command("demo")(demo_command)
app.add_typer(contracts_app, name="contracts")
app.command("openapi")(openapi_command)


@app.callback()
def _configure() -> None:
    current = settings()
    configure_logging(current.log_format, current.log_level, current.log_file)


@db_app.command("upgrade")
def db_upgrade(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Apply every pending migration."""
    current = settings()
    upgrade(current.database_url)
    state = schema_state(database().sync_engine, current.database_url)
    if as_json:
        typer.echo(json.dumps({"current": sorted(state.current), "head": sorted(state.head)}))
    else:
        console().print(f"Database schema at {', '.join(sorted(state.current))} (current).")


@db_app.command("status")
def db_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Say whether the database schema is current; exit 1 when it is behind."""
    current = settings()
    state = schema_state(database().sync_engine, current.database_url)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "current": sorted(state.current),
                    "head": sorted(state.head),
                    "is_current": state.is_current,
                }
            )
        )
    else:
        console().print(state.describe())
    if not state.is_current:
        raise typer.Exit(1)


def run_server(host: str, port: int, workers: int) -> None:
    try:
        ensure_schema_current(database())
    except SchemaBehindError as exc:
        console(stderr=True).print(f"[red]Refusing to serve:[/red] {exc}")
        raise typer.Exit(2) from exc
    # The workers (this process when there is one) leave sealing to a process of their own.
    os.environ["GATEWAY_AUDIT_SEAL_IN_PROCESS"] = "false"
    # Each worker keeps its app for its whole life (see the setting).
    os.environ["GATEWAY_FREEZE_HEAP_AFTER_STARTUP"] = "true"
    get_settings.cache_clear()
    proxies = get_settings().trusted_proxies
    with sealer_process():
        uvicorn.run(
            "gateway.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            # Forwarding headers are believed from the configured balancers only: from
            # anyone else they would let a client choose the address it is throttled by.
            proxy_headers=proxies is not None,
            forwarded_allow_ips=proxies,
        )


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
) -> None:
    """Run the gateway's HTTP server."""
    run_server(host, port, workers)
