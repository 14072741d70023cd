"""The status change feed: paging with cursors, polling, bad cursors and limits."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from factories import (
    Connect,
    create_account,
    create_ingestion_run,
    create_status_event,
    offline_context,
)
from feed_helpers import drain, page, settle
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connectors.kit import InvalidRequest
from connectors.status import feed
from gateway.database import Database
from gateway.reference.models import StatusEvent


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_manifest() -> None:
    assert feed.VERSION.key == "status-events.v1"
    assert feed.VERSION.scope == "status:feed"
    (operation,) = feed.VERSION.operations
    assert (operation.method, operation.path, operation.subject) == (
        "GET",
        "/status/events",
        None,
    )


async def test_pages_to_the_end_then_keeps_the_cursor(
    session: Session, db: Database, connect: Connect
) -> None:
    accounts = [create_account(session) for _ in range(3)]
    recorded = dt.datetime(2026, 7, 1, 3, tzinfo=dt.UTC)
    inserted = []
    for day in range(1, 8):
        account = accounts[day % 3]
        inserted.append(
            create_status_event(
                session,
                account,
                "radiation" if day % 2 else "affiliation",
                dt.date(2026, 6, day),
                detail=f"motif {day}",
                recorded_at=recorded,
            )
        )
        session.commit()  # one transaction per event, as ingestion would
    siren_of = {account.id: account.siren for account in accounts}
    await settle(db)

    first, cursor, first_sirens = await page(connect, limit=3)
    second, cursor, second_sirens = await page(connect, cursor, limit=3)
    third, cursor, _ = await page(connect, cursor, limit=3)
    empty, same, none = await page(connect, cursor, limit=3)

    assert [len(first), len(second), len(third), len(empty)] == [3, 3, 1, 0]
    assert [event.id for event in first + second + third] == [event.id for event in inserted]
    assert (same, none) == (cursor, [])
    # Each page names every account it carries, each once, for the audit trail.
    assert first_sirens == list(dict.fromkeys(event.siren for event in first))
    assert sorted(second_sirens) == sorted({siren_of[e.account_id] for e in inserted[3:6]})
    radiation = first[0]
    assert (radiation.siren, radiation.event, radiation.effective_date, radiation.detail) == (
        siren_of[inserted[0].account_id],
        "radiation",
        dt.date(2026, 6, 1),
        "motif 1",
    )
    assert radiation.recorded_at == recorded


async def test_polling_with_the_last_cursor_returns_only_new_events(
    session: Session, db: Database, connect: Connect
) -> None:
    account = create_account(session)
    create_status_event(session, account, "affiliation", dt.date(2020, 1, 1))
    session.commit()
    await settle(db)
    seen, cursor = await drain(connect)

    later = create_status_event(session, account, "radiation", dt.date(2026, 6, 30))
    session.commit()
    await settle(db)
    new, cursor_after = await drain(connect, cursor)

    assert len(seen) == 1
    assert [event.id for event in new] == [later.id]
    assert cursor_after != cursor


async def test_an_empty_feed_returns_a_cursor_from_the_start(
    session: Session, db: Database, connect: Connect
) -> None:
    events, cursor, sirens = await page(connect)
    assert (events, sirens) == ([], [])
    assert feed.decode_cursor(cursor) == feed.START

    account = create_account(session)
    first = create_status_event(session, account, "affiliation", dt.date(2026, 1, 5))
    session.commit()
    await settle(db)

    events, _ = await drain(connect, cursor)
    assert [event.id for event in events] == [first.id]


async def test_as_of_on_full_and_empty_pages(
    session: Session, db: Database, connect: Connect
) -> None:
    account = create_account(session)
    create_status_event(session, account, "affiliation", dt.date(2026, 1, 5))
    loaded = dt.datetime(2026, 7, 2, 4, 30, tzinfo=dt.UTC)
    create_ingestion_run(session, "status-events", loaded)
    create_ingestion_run(session, "cfp", loaded + dt.timedelta(days=1))
    session.commit()
    await settle(db)

    async with connect() as ctx:
        full = (await feed.status_events(ctx=ctx)).body
    async with connect() as ctx:
        empty = (await feed.status_events(after=full.next_cursor, ctx=ctx)).body

    assert len(full.events) == 1
    assert full.as_of == empty.as_of == loaded
    assert full.source == "URSSAF — reference store"


async def test_a_page_is_one_query(
    session: Session, db: Database, connect: Connect, statements: list[str]
) -> None:
    accounts = [create_account(session) for _ in range(20)]
    for account in accounts:
        create_status_event(session, account, "affiliation", dt.date(2026, 1, 5))
    session.commit()
    await settle(db)
    await page(connect, limit=1)  # warm the pool
    statements.clear()

    events, _, sirens = await page(connect, limit=20)

    assert len(events) == len(sirens) == 20
    assert len([sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]) == 1


async def test_events_inserted_without_tx_id_get_the_server_default(
    session: Session, db: Database
) -> None:
    """Ingestion inserts events with Core and no tx_id: the database must fill it in."""
    account = create_account(session)
    orm_event = create_status_event(session, account, "affiliation", dt.date(2026, 1, 1))
    session.execute(
        insert(StatusEvent).values(
            account_id=account.id,
            event="radiation",
            effective_date=dt.date(2026, 2, 1),
            recorded_at=dt.datetime(2026, 2, 2, tzinfo=dt.UTC),
        )
    )
    session.commit()
    session.execute(
        insert(StatusEvent).values(
            account_id=account.id,
            event="affiliation",
            effective_date=dt.date(2026, 3, 1),
            recorded_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        )
    )
    session.commit()

    tx_ids = session.scalars(select(StatusEvent.tx_id).order_by(StatusEvent.id)).all()

    if db.sync_engine.dialect.name == "postgresql":
        same_transaction, next_transaction = tx_ids[:2], tx_ids[2]
        assert same_transaction[0] == same_transaction[1] > 0
        assert next_transaction > same_transaction[0]
    else:
        assert tx_ids == [0, 0, 0]
    assert orm_event.id is not None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!!",
        "a" * 65,
        b64(b"not json"),
        b64(b"{}"),
        b64(b"[1]"),
        b64(b"[1,2,3]"),
        b64(b"[true,1]"),
        b64(b"[1.5,2]"),
        b64(b'["1","2"]'),
        b64(b"[-1,0]"),
        b64(str([2**63, 0]).encode()),
        b64("[1,2]".encode("utf-16")),
        "WzEsMl0=",  # padding is not part of the alphabet this feed issues
    ],
)
async def test_a_cursor_not_issued_by_the_feed_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        await page(offline_context, cursor)
    assert error.value.code == "cursor.invalid"
    assert error.value.status == 422


@pytest.mark.parametrize("limit", [0, -1, 1001, 10**12])
async def test_a_limit_out_of_bounds_is_refused(limit: int) -> None:
    with pytest.raises(InvalidRequest) as error:
        await page(offline_context, limit=limit)
    assert error.value.code == "limit.invalid"


async def test_the_largest_limit_is_accepted(connect: Connect) -> None:
    events, _, _ = await page(connect, limit=feed.MAX_LIMIT)
    assert events == []


@given(st.text(max_size=80))
def test_decoding_any_text_gives_a_position_or_cursor_invalid(cursor: str) -> None:
    try:
        position = feed.decode_cursor(cursor)
    except InvalidRequest as error:
        code = error.code
    else:
        code = "decoded"
        assert all(0 <= part < 2**63 for part in position)
    assert code in {"decoded", "cursor.invalid"}


@given(
    st.tuples(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1)),
)
def test_cursors_round_trip(position: tuple[int, int]) -> None:
    cursor = feed.encode_cursor(position)
    assert feed.decode_cursor(cursor) == position
    assert len(cursor) <= 64
    assert json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))) == list(position)
