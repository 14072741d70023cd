"""The server's connection pool is sized by the settings, without a churning overflow.

Under sustained load an overflow connection is opened and closed again for a share of all
requests, each time starting a PostgreSQL backend: the benchmarks measured a thousand such
connections in 30 seconds with the old default of 10. If these tests fail, the server pool no
longer follows ``GATEWAY_DATABASE_POOL_SIZE`` / ``GATEWAY_DATABASE_MAX_OVERFLOW``.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy.pool import QueuePool

from gateway.app import create_app
from gateway.database import Database
from gateway.settings import Settings


def test_by_default_the_server_opens_no_overflow_connection() -> None:
    defaults = Settings()
    assert defaults.database_max_overflow == 0
    assert defaults.database_pool_size >= 1


def test_a_pool_too_small_for_the_connections_kept_is_refused() -> None:
    with pytest.raises(ValidationError, match="database_pool_size"):
        Settings(database_pool_size=4)


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
    # The embedded default keeps SQLAlchemy's own pool for SQLite files: the PostgreSQL
    # sizing must not reach it.
    default = Database(f"sqlite:///{tmp_path}/default.db")
    sized = Database(f"sqlite:///{tmp_path}/sized.db", pool_size=3, max_overflow=0)
    try:
        assert type(sized.async_engine.pool) is type(default.async_engine.pool)
        assert sized.async_engine.pool.status() == default.async_engine.pool.status()
    finally:
        default.sync_engine.dispose()
        sized.sync_engine.dispose()
