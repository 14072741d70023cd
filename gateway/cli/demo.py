"""``gateway demo``: the embedded default, migrated, seeded and serving, in one command."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import func, select

from gateway.cli.context import console, database, settings
from gateway.migrate import upgrade
from gateway.reference.models import Account

DEMO_PERSONS = 2_000
DEMO_SEED = 2026


def demo_command(
    port: Annotated[int, typer.Option(help="Port of the gateway.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Migrate, seed synthetic data if the store is empty, and serve."""
    from gateway.cli.app import run_server
    from gateway.reference.seed import seed_reference_data

    current = settings()
    out = console()
    upgrade(current.database_url)
    out.print(f"Database migrated: {current.database_url}")
    db = database()
    with db.sync_session() as session:
        accounts = session.scalar(select(func.count()).select_from(Account)) or 0
    if accounts == 0:
        summary = seed_reference_data(db.sync_engine, persons=DEMO_PERSONS, seed=DEMO_SEED)
        out.print(f"Seeded synthetic reference data: {summary}")
    else:
        out.print(f"Reference store already holds {accounts} accounts.")
    out.print(f"Gateway on http://{host}:{port} (readiness: http://{host}:{port}/readyz)")
    run_server(host, port, workers=1)
