"""Reads of the request path: statements built once, compiled once, run by the driver.

A lookup's cost is mostly Python, not the database: building a SQLAlchemy statement, deriving
its cache key, an ORM session and a transaction around one SELECT cost several times the
query itself (``benchmarks/RESULTS.md``). So connectors declare their statements once, at
import, with named ``bindparam`` placeholders (:class:`Prepared`), and read through a
:class:`Reader`:

- on PostgreSQL a statement is compiled once for asyncpg and run by asyncpg itself, outside
  any transaction, on one of the connections the reader keeps, for that statement alone: one
  statement reads one consistent snapshot, no BEGIN or ROLLBACK travels to the server, and no
  connection is held while the request does anything else (such as waiting on Pôle emploi).
  asyncpg prepares each statement once per connection.
- on SQLite, the embedded default, the same statements run through SQLAlchemy.

Rows are sequences in the order of the statement's columns, on both databases, and hold the
same Python types (``Decimal``, ``date``, aware UTC ``datetime``, ``str``).

A plain ``Select`` works too, values embedded (``in_`` over a list, as a batch does): it is
compiled at each call, which suits a statement run once per thousand items.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Row = Sequence[Any]
AnySelect: TypeAlias = Select[*tuple[Any, ...]]


class Reader(Protocol):
    """Runs SELECT statements, each on a pooled connection of its own."""

    dialect_name: str

    async def all(self, statement: Statement, **params: Any) -> list[Row]:
        """Every row of ``statement``, with its ``bindparam`` placeholders set from ``params``."""
        ...

    async def first(self, statement: Statement, **params: Any) -> Row | None:
        """The first row, or None."""
        ...

    async def scalar(self, statement: Statement, **params: Any) -> Any:
        """The first column of the first row, or None."""
        ...

    async def close(self) -> None:
        """Give back any connection the reader keeps (the database is being closed)."""
        ...


@dataclass(frozen=True, slots=True)
class CompiledRead:
    """A statement's SQL for one dialect, with its parameters in positional order."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        try:
            return [params[name] if name in params else self.defaults[name] for name in self.names]
        except KeyError as exc:
            raise TypeError(f"the statement needs the parameter {exc.args[0]!r}") from None


class Prepared:
    """A statement declared once, at import, and run many times with different parameters."""

    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement
        self._compiled: dict[str, CompiledRead] = {}

    def compiled(self, dialect: Dialect) -> CompiledRead:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = compile_read(self.statement, dialect)
        return found


Statement = Prepared | AnySelect


def compile_read(statement: ClauseElement, dialect: Dialect) -> CompiledRead:
    """The statement's SQL for ``dialect``, embedded lists expanded into parameters."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"not a SQL statement: {type(statement).__name__}")
    # Values the statement holds (constants, embedded lists); a bare ``bindparam`` has none.
    defaults = {
        name: value
        for name, value in compiled.params.items()
        if name not in compiled.binds or not compiled.binds[name].required
    }
    return CompiledRead(compiled.string, tuple(compiled.positiontup or ()), defaults)


def _sql(statement: Statement, dialect: Dialect) -> CompiledRead:
    if isinstance(statement, Prepared):
        return statement.compiled(dialect)
    return compile_read(statement, dialect)


def _statement(statement: Statement) -> AnySelect:
    return statement.statement if isinstance(statement, Prepared) else statement


class _RowsReader:
    """``first`` and ``scalar`` in terms of a reader's own ``all``."""

    async def all(self, statement: Statement, **params: Any) -> list[Row]:
        raise NotImplementedError

    async def first(self, statement: Statement, **params: Any) -> Row | None:
        rows = await self.all(statement, **params)
        return rows[0] if rows else None

    async def scalar(self, statement: Statement, **params: Any) -> Any:
        row = await self.first(statement, **params)
        return row[0] if row is not None else None


# Pool connections the reader leaves to others: the audit writer and the rate limiter keep one
# each, and sessions (token state, consents, idempotency, the token endpoint) need the rest.
RESERVED_CONNECTIONS = 4


class PostgresReader(_RowsReader):
    """Reads on raw asyncpg connections the reader keeps, taken from the engine's pool.

    Taking a connection from SQLAlchemy's pool and giving it back costs several times the CPU
    of the statement itself (``benchmarks/RESULTS.md``), so the reader keeps the connections it
    has used, up to the pool's size less :data:`RESERVED_CONNECTIONS`, as a pool keeps its idle
    ones; :meth:`close` gives them back. Requests take them first come, first served.
    """

    dialect_name = "postgresql"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        pool_size: int = getattr(engine.pool, "size", lambda: 1)()
        self._limit = max(1, pool_size - RESERVED_CONNECTIONS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate = asyncio.Semaphore(self._limit)
        self._idle: list[HeldConnection] = []

    def _fair_gate(self) -> asyncio.Semaphore:
        """A first-come, first-served queue in front of the kept connections.

        A pool hands a returned connection to whichever request asks next, so under load a
        newcomer overtakes requests already waiting, which then wait again: the tail latency
        grows without bound. asyncio's semaphore serves waiters in order.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Connections belong to the loop that opened them; a new loop starts afresh.
            self._gate = asyncio.Semaphore(self._limit)
            self._idle = []
            self._loop = loop
        return self._gate

    async def all(self, statement: Statement, **params: Any) -> list[Row]:
        compiled = _sql(statement, self._dialect)
        arguments = compiled.arguments(params)
        async with self._fair_gate():
            connection = self._idle.pop() if self._idle else HeldConnection(self._engine)
            try:
                return await connection.fetch_arguments(compiled.sql, arguments)
            finally:
                # A connection whose statement failed has dropped itself and reconnects on
                # its next use.
                self._idle.append(connection)

    async def close(self) -> None:
        """Give the kept connections back to the engine's pool."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


class HeldConnection:
    """A pooled connection kept by a task that runs one statement at a time on asyncpg.

    The reader, the audit writer and the rate limiter run their statements on connections
    they keep: taking a connection from the pool and giving it back costs more CPU than running
    the statement. A statement that fails or is cancelled drops the connection (its state is
    unknown) and the next one takes a fresh one.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._driver: Any = None

    async def fetch(self, statement: CompiledRead, params: Mapping[str, Any]) -> list[Row]:
        return await self.fetch_arguments(statement.sql, statement.arguments(params))

    async def fetch_arguments(self, sql: str, arguments: Sequence[Any]) -> list[Row]:
        if self._connection is None:
            self._connection = await self._engine.connect()
            self._driver = (await self._connection.get_raw_connection()).driver_connection
        try:
            rows: list[Row] = await self._driver.fetch(sql, *arguments)
        except BaseException:
            await self.close(invalidate=True)
            raise
        return rows

    async def close(self, *, invalidate: bool = False) -> None:
        connection, self._connection, self._driver = self._connection, None, None
        if connection is None:
            return
        if invalidate:
            await connection.invalidate()
        await connection.close()


class SqlAlchemyReader(_RowsReader):
    """Reads through SQLAlchemy: the embedded SQLite default."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect_name = engine.dialect.name

    async def all(self, statement: Statement, **params: Any) -> list[Row]:
        if isinstance(statement, Prepared):
            # The same refusal of a missing parameter as on PostgreSQL, before any connection.
            statement.compiled(self._engine.dialect).arguments(params)
        async with self._engine.connect() as connection:
            result = await connection.execute(_statement(statement), params)
            return list(result)

    async def close(self) -> None:
        """Nothing to give back: each read takes its connection from the pool and returns it."""


def reader_for(engine: AsyncEngine) -> Reader:
    """The reader of an engine: asyncpg itself on PostgreSQL, SQLAlchemy elsewhere."""
    if engine.dialect.name == "postgresql":
        return PostgresReader(engine)
    return SqlAlchemyReader(engine)
