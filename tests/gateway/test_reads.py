"""Reads of the request path: prepared statements, the same rows and types on both databases."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from factories import create_account, create_declaration
from sqlalchemy import Date, Float, bindparam, func, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.orm import Session

from gateway.database import Database
from gateway.reads import HeldConnection, Prepared, compile_read
from gateway.reference.models import Account, TurnoverDeclaration
from gateway.settings import Settings

DECLARATIONS = Prepared(
    select(
        Account.siren,
        TurnoverDeclaration.period_start,
        TurnoverDeclaration.declared_at,
        TurnoverDeclaration.sales_bic,
    )
    .join(TurnoverDeclaration, TurnoverDeclaration.account_id == Account.id)
    .where(
        Account.siren == bindparam("siren"),
        TurnoverDeclaration.period_start >= bindparam("first_day", type_=Date),
    )
    .order_by(TurnoverDeclaration.period_start)
)

SLEEP = Prepared(select(func.pg_sleep(bindparam("seconds", type_=Float))))


async def test_rows_come_in_column_order_with_python_types(
    session: Session, async_db: Database
) -> None:
    account = create_account(session)
    create_declaration(session, account, "2025-01", sales_bic="12.50")
    create_declaration(session, account, "2025-02", sales_bic="3")
    session.commit()

    rows = await async_db.reader.all(
        DECLARATIONS, siren=account.siren, first_day=dt.date(2025, 2, 1)
    )

    assert len(rows) == 1
    siren, period_start, declared_at, sales_bic = rows[0]
    assert siren == account.siren
    assert period_start == dt.date(2025, 2, 1)
    assert isinstance(declared_at, dt.datetime)
    assert declared_at.utcoffset() == dt.timedelta(0)
    assert sales_bic == Decimal("3")
    assert isinstance(sales_bic, Decimal)


async def test_first_and_scalar_say_none_when_nothing_matches(async_db: Database) -> None:
    params = {"siren": "000000000", "first_day": dt.date(2025, 1, 1)}

    assert await async_db.reader.all(DECLARATIONS, **params) == []
    assert await async_db.reader.first(DECLARATIONS, **params) is None
    assert await async_db.reader.scalar(DECLARATIONS, **params) is None


async def test_a_plain_select_with_an_embedded_list_works(
    session: Session, async_db: Database
) -> None:
    accounts = [create_account(session) for _ in range(3)]
    session.commit()
    wanted = [accounts[0].siren, accounts[2].siren, "000000000"]

    rows = await async_db.reader.all(
        select(Account.siren).where(Account.siren.in_(wanted)).order_by(Account.siren)
    )

    assert [row[0] for row in rows] == sorted([accounts[0].siren, accounts[2].siren])


async def test_a_missing_parameter_is_refused_before_the_database(async_db: Database) -> None:
    with pytest.raises(TypeError, match="first_day"):
        await async_db.reader.all(DECLARATIONS, siren="732829320")


def test_a_prepared_statement_is_compiled_once_per_dialect() -> None:
    dialect = asyncpg_dialect()

    first = DECLARATIONS.compiled(dialect)

    assert DECLARATIONS.compiled(dialect) is first
    assert "$1" in first.sql
    assert set(first.names) == {"siren", "first_day"}


def test_arguments_follow_the_statement_s_placeholders() -> None:
    read = compile_read(DECLARATIONS.statement, asyncpg_dialect())
    day = dt.date(2025, 1, 1)

    arguments = read.arguments({"first_day": day, "siren": "732829320"})

    assert arguments == [{"siren": "732829320", "first_day": day}[name] for name in read.names]
    assert read.sql.index("$1") < read.sql.index("$2")


@pytest.mark.postgresql_only
async def test_reads_waiting_for_a_connection_are_served_in_arrival_order(
    settings: Settings,
) -> None:
    """A pool too small to leave the reader more than one connection: one read at a time,
    first come first served, so a read that waits is never overtaken by a later one."""
    db = Database(settings.database_url, pool_size=3, max_overflow=0)
    done: list[str] = []

    async def read(name: str, seconds: float) -> None:
        await db.reader.all(SLEEP, seconds=seconds)
        done.append(name)

    try:
        first = asyncio.create_task(read("first", 0.3))
        await asyncio.sleep(0.05)
        later = [asyncio.create_task(read(name, 0.0)) for name in ("a", "b", "c")]
        await asyncio.gather(first, *later)
    finally:
        await db.dispose()

    assert done == ["first", "a", "b", "c"]


BACKEND_PID = Prepared(select(func.pg_backend_pid()))
SLEEP_THEN_PID = Prepared(
    select(func.pg_backend_pid()).where(
        func.pg_sleep(bindparam("seconds", type_=Float)).is_not(None)
    )
)


@pytest.mark.postgresql_only
async def test_the_reader_keeps_its_connections_and_gives_them_back_on_close(
    settings: Settings,
) -> None:
    db = Database(settings.database_url, pool_size=6, max_overflow=0)
    pool = db.async_engine.pool
    try:
        first = await db.reader.scalar(BACKEND_PID)
        again = await db.reader.scalar(BACKEND_PID)
        assert again == first  # no trip through the pool between reads
        assert pool.checkedout() == 1
    finally:
        await db.reader.close()
        assert pool.checkedout() == 0
        await db.dispose()


@pytest.mark.postgresql_only
async def test_the_reader_leaves_the_reserved_connections_to_sessions(
    settings: Settings,
) -> None:
    """Six pooled connections, four left to others: however many reads run at once, the
    reader keeps two, and a session still gets a connection at once."""
    db = Database(settings.database_url, pool_size=6, max_overflow=0)
    try:
        reads = [
            asyncio.create_task(db.reader.scalar(SLEEP_THEN_PID, seconds=0.3)) for _ in range(6)
        ]
        await asyncio.sleep(0.1)
        async with asyncio.timeout(0.2), db.session() as session:
            assert (await session.execute(select(1))).scalar_one() == 1
        pids = await asyncio.gather(*reads)
        assert len(set(pids)) == 2
        assert db.async_engine.pool.checkedout() == 2
    finally:
        await db.dispose()


@pytest.mark.postgresql_only
async def test_a_read_on_a_lost_connection_fails_and_the_next_one_reconnects(
    settings: Settings,
) -> None:
    db = Database(settings.database_url)
    try:
        first = await db.reader.scalar(BACKEND_PID)
        async with db.async_engine.connect() as other:
            await other.exec_driver_sql(f"SELECT pg_terminate_backend({int(first)})")
        with pytest.raises(Exception):  # noqa: B017, PT011 - whichever error the driver raises
            await db.reader.scalar(BACKEND_PID)
        replacement = await db.reader.scalar(BACKEND_PID)
        assert replacement != first
    finally:
        await db.dispose()


@pytest.mark.postgresql_only
async def test_a_held_connection_is_kept_and_replaced_after_a_failure(
    settings: Settings,
) -> None:
    db = Database(settings.database_url)
    held = HeldConnection(db.async_engine)
    statement = compile_read(BACKEND_PID.statement, db.async_engine.dialect)
    try:
        [[first]] = await held.fetch(statement, {})
        [[again]] = await held.fetch(statement, {})
        assert again == first  # one connection for statement after statement
        # The server ends that session, as a restart or an administrator would.
        async with db.async_engine.connect() as other:
            await other.exec_driver_sql(f"SELECT pg_terminate_backend({int(first)})")
        with pytest.raises(Exception):  # noqa: B017, PT011 - whichever error the driver raises
            await held.fetch(statement, {})
        [[replacement]] = await held.fetch(statement, {})
        assert replacement != first
    finally:
        await held.close()
        await db.dispose()
