"""The feed never skips an event, even when writers commit out of order (PostgreSQL).

Were the feed ordered by id alone, or by (tx_id, id) without holding back events of
transactions younger than the oldest one still running, these tests would lose events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import threading
import time

import pytest
from factories import Connect, create_account
from feed_helpers import drain, page
from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from gateway.database import Database
from gateway.reference.models import StatusEvent

pytestmark = pytest.mark.postgresql_only


def insert_event(connection: Connection, account_id: int, effective_date: dt.date) -> int:
    """Insert as ingestion does (Core, no tx_id) and return the new event's id."""
    return connection.execute(
        insert(StatusEvent)
        .values(
            account_id=account_id,
            event="affiliation",
            effective_date=effective_date,
            recorded_at=dt.datetime.now(dt.UTC),
        )
        .returning(StatusEvent.id)
    ).scalar_one()


async def drain_until(
    connect: Connect, cursor: str | None, expected: set[int], within: float = 10.0
) -> tuple[list[int], str | None]:
    """Page from ``cursor`` until every expected id came or ``within`` seconds pass."""
    seen: list[int] = []
    deadline = time.monotonic() + within
    while not expected <= set(seen) and time.monotonic() < deadline:
        events, next_cursor = await drain(connect, cursor, limit=2)
        seen.extend(event.id for event in events)
        cursor = next_cursor
        await asyncio.sleep(0.01)
    return seen, cursor


async def test_an_event_committed_late_is_delivered_after_the_cursor(
    session: Session, db: Database, connect: Connect
) -> None:
    account = create_account(session)
    session.commit()

    with db.sync_engine.connect() as slow, db.sync_engine.connect() as fast:
        slow_id = insert_event(slow, account.id, dt.date(2026, 1, 1))  # T1: the smaller id
        fast_id = insert_event(fast, account.id, dt.date(2026, 1, 2))  # T2
        fast.commit()
        assert slow_id < fast_id

        # T1 is still open: handing out T2's event now would move the cursor past T1's.
        events, cursor, _ = await page(connect)
        assert fast_id not in [event.id for event in events]
        assert slow_id not in [event.id for event in events]

        slow.commit()

    seen, _ = await drain_until(connect, cursor, {slow_id, fast_id})
    assert seen == [slow_id, fast_id]


async def test_an_event_rolled_back_never_shows_and_never_blocks(
    session: Session, db: Database, connect: Connect
) -> None:
    account = create_account(session)
    session.commit()

    with db.sync_engine.connect() as aborted, db.sync_engine.connect() as kept:
        lost_id = insert_event(aborted, account.id, dt.date(2026, 1, 1))
        kept_id = insert_event(kept, account.id, dt.date(2026, 1, 2))
        kept.commit()
        aborted.rollback()

    seen, _ = await drain_until(connect, None, {kept_id})
    assert seen == [kept_id]
    assert lost_id not in seen


async def test_random_concurrent_writers_lose_no_event(
    session: Session, db: Database, connect: Connect
) -> None:
    """Writers commit (or roll back) in random order while a consumer drains the feed."""
    writers, transactions_per_writer = 6, 8
    accounts = [create_account(session) for _ in range(writers)]
    session.commit()
    committed: set[int] = set()
    rolled_back: set[int] = set()
    lock = threading.Lock()
    failures: list[BaseException] = []

    def write(account_id: int, seed: int) -> None:
        rng = random.Random(seed)
        day = dt.date(2000, 1, 1)
        try:
            for _ in range(transactions_per_writer):
                with db.sync_engine.connect() as connection:
                    ids = []
                    for _ in range(rng.randint(1, 3)):
                        ids.append(insert_event(connection, account_id, day))
                        day += dt.timedelta(days=1)
                        time.sleep(rng.uniform(0, 0.015))
                    if rng.random() < 0.15:
                        connection.rollback()
                        with lock:
                            rolled_back.update(ids)
                    else:
                        connection.commit()
                        with lock:
                            committed.update(ids)
                time.sleep(rng.uniform(0, 0.01))
        except BaseException as error:  # reported to the test below
            failures.append(error)

    seed = random.randrange(2**32)
    threads = [
        threading.Thread(target=write, args=(account.id, seed + index))
        for index, account in enumerate(accounts)
    ]
    for thread in threads:
        thread.start()
    seen: list[int] = []
    cursor: str | None = None
    while any(thread.is_alive() for thread in threads):
        events, cursor, _ = await page(connect, cursor, limit=random.randint(1, 5))
        seen.extend(event.id for event in events)
        await asyncio.sleep(0.002)
    for thread in threads:
        thread.join()
    assert not failures, failures

    rest, _ = await drain_until(connect, cursor, committed - set(seen))
    seen.extend(rest)

    assert committed - set(seen) == set(), f"events skipped (seed {seed})"
    assert not rolled_back & set(seen)
    assert len(seen) == len(set(seen)), "an event was delivered twice"
