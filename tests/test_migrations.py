"""Invariant 6: migrations make the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway.database import Database
from gateway.migrate import alembic_config, schema_state, upgrade
from gateway.models import metadata


def _differences(db: Database) -> list[object]:
    with db.sync_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, metadata))


def test_invariant_6_the_migrated_schema_is_the_models_schema(db: Database) -> None:
    assert _differences(db) == []


def test_invariant_6_every_table_is_made_by_a_migration(db: Database) -> None:
    tables = set(inspect(db.sync_engine).get_table_names()) - {"alembic_version"}
    assert tables == set(metadata.tables)


def test_migrations_go_down_and_up_again(database_url: str, db: Database) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), "base")
    assert set(inspect(db.sync_engine).get_table_names()) <= {"alembic_version"}
    upgrade(database_url)
    assert schema_state(db.sync_engine, database_url).is_current
    assert _differences(db) == []
