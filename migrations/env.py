"""Alembic environment: runs migrations on the connection or URL handed over by the gateway."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.database import make_sync_engine
from gateway.models import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_sync_engine(config.get_main_option("gateway.database_url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `gateway db upgrade`")
run_migrations_online()
