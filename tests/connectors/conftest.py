"""Fixtures shared by the connectors' tests."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from gateway.database import Database


@pytest.fixture
def statements(db: Database) -> list[str]:
    """Every SQL statement the connectors' (async) engine sends during the test.

    On PostgreSQL reads run on asyncpg itself, below SQLAlchemy's events (``gateway.reads``),
    so statements are caught there, by asyncpg's query logger, on every connection the
    engine opens from now on; on SQLite by SQLAlchemy's cursor event.
    """
    sent: list[str] = []
    engine = db.async_engine.sync_engine
    if engine.dialect.name == "postgresql":

        def log_queries(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.driver_connection.add_query_logger(
                lambda logged: sent.append(logged.query)
            )

        event.listen(engine, "connect", log_queries)
    else:

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            sent.append(statement)

        event.listen(engine, "before_cursor_execute", record)
    return sent
