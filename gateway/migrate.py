"""Schema migrations: apply them, and tell whether a database is current."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import migrations

UPGRADE_COMMAND = "gateway db upgrade"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("gateway.database_url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


@dataclass(frozen=True)
class SchemaState:
    current: frozenset[str]
    head: frozenset[str]

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.is_current:
            return "the database schema is current"
        return (
            "the database schema is behind the code "
            f"(at {sorted(self.current) or 'nothing'}, code needs {sorted(self.head)}): "
            f"run `{UPGRADE_COMMAND}`"
        )


def schema_state(engine: Engine, database_url: str) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return SchemaState(current=frozenset(current), head=frozenset(script.get_heads()))
