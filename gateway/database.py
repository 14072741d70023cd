"""Database access: plain URLs mapped to our drivers, engines, sessions and the model base.

Partners configure a plain URL (``sqlite:///...`` or ``postgresql://...``); the gateway picks
the drivers: the standard library's sqlite3 and aiosqlite for the embedded default; psycopg 3
(sync: migrations, the CLI, COPY) and asyncpg (async: the server) for PostgreSQL, so
switching databases needs no other change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.types import TypeDecorator

from gateway.reads import Reader, reader_for

# Explicit constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: pass an aware UTC datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UtcDateTime()}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def driver_urls(url: str) -> tuple[URL, URL]:
    """The (sync, async) SQLAlchemy URLs for a plain database URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite"), parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return (
            parsed.set(drivername="postgresql+psycopg"),
            parsed.set(drivername="postgresql+asyncpg"),
        )
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite:// or postgresql://")


def _prepare_sqlite(engine: Engine, url: URL) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the single writer; foreign keys are off by default.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def make_sync_engine(url: str, **kwargs: Any) -> Engine:
    sync_url, _ = driver_urls(url)
    engine = create_engine(sync_url, **kwargs)
    if is_sqlite(sync_url):
        _prepare_sqlite(engine, sync_url)
    return engine


def make_async_engine(url: str, **kwargs: Any) -> AsyncEngine:
    _, async_url = driver_urls(url)
    if not is_sqlite(async_url):
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(async_url, **kwargs)
    if is_sqlite(async_url):
        _prepare_sqlite(engine.sync_engine, async_url)
    return engine


class Database:
    """The engines and session factories of one database, shared by the app and the CLI."""

    def __init__(
        self, url: str, *, pool_size: int | None = None, max_overflow: int | None = None
    ) -> None:
        self.url = url
        self.sync_engine = make_sync_engine(url)
        pool: dict[str, int] = {}
        if not is_sqlite(url):
            if pool_size is not None:
                pool["pool_size"] = pool_size
            if max_overflow is not None:
                pool["max_overflow"] = max_overflow
        self.async_engine = make_async_engine(url, **pool)
        self.sync_session = sessionmaker(self.sync_engine, expire_on_commit=False)
        self.async_session = async_sessionmaker(self.async_engine, expire_on_commit=False)
        self.reader: Reader = reader_for(self.async_engine)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.async_session() as session:
            yield session

    async def dispose(self) -> None:
        await self.reader.close()
        await self.async_engine.dispose()
        self.sync_engine.dispose()
