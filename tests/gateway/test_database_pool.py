"""The server's connection pool is sized by the settings, without a churning overflow.

Under sustained load an overflow connection is opened and closed again for a share of all
requests, each time starting a PostgreSQL backend: the benchmarks measured a thousand such
connections in 30 seconds with the old default of 10. If these tests fail, the server pool no
longer follows ``GATEWAY_DATABASE_POOL_SIZE`` / ``GATEWAY_DATABASE_MAX_OVERFLOW``.
"""

from __future__ import annotations

import pytest
from sqlalchemy.pool import QueuePool

from gateway.app import create_app
from gateway.database import Database
from gateway.settings import Settings


def test_by_default_the_server_opens_no_overflow_connection() -> None:
    defaults = Settings()
    assert defaults.database_max_overflow == 0
    assert defaults.database_pool_size >= 1


@pytest.mark.postgresql_only
def test_the_server_pool_follows_the_settings(settings: Settings) -> None:
    app = create_app(
        settings.model_copy(update={"database_pool_size": 7, "database_max_overflow": 2})
    )
    pool = app.state.db.async_engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.size() == 7
    assert pool._max_overflow == 2


@pytest.mark.postgresql_only
def test_a_database_without_pool_arguments_keeps_its_former_pool(database_url: str) -> None:
    db = Database(database_url)
    try:
        pool = db.async_engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow) == (20, 10)
    finally:
        db.sync_engine.dispose()


def test_pool_arguments_are_ignored_on_sqlite(tmp_path: object) -> None:
    # SQLite has no server to pool connections to: the arguments must not reach its engine.
    db = Database(f"sqlite:///{tmp_path}/pool.db", pool_size=3, max_overflow=0)
    try:
        assert not isinstance(db.async_engine.pool, QueuePool)
    finally:
        db.sync_engine.dispose()
