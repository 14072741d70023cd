"""Helpers shared by the status feed tests: read pages as a consumer would."""

from __future__ import annotations

import asyncio
import time

from factories import Connect
from sqlalchemy import text

from connectors.status import feed
from gateway.database import Database


async def page(
    connect: Connect, after: str | None = None, limit: int = feed.DEFAULT_LIMIT
) -> tuple[list[feed.StatusFeedEventV1], str, list[str]]:
    """One page: its events, its next cursor and the SIRENs it names as subjects."""
    async with connect() as ctx:
        disclosure = await feed.status_events(after=after, limit=limit, ctx=ctx)
    sirens = [subject.identifier for subject in disclosure.subjects]
    assert all(subject.kind == "siren" for subject in disclosure.subjects)
    return disclosure.body.events, disclosure.body.next_cursor, sirens


async def drain(
    connect: Connect, after: str | None = None, limit: int = feed.DEFAULT_LIMIT
) -> tuple[list[feed.StatusFeedEventV1], str]:
    """Every event after ``after`` until a page comes back empty, and the final cursor."""
    events: list[feed.StatusFeedEventV1] = []
    while True:
        batch, after, _ = await page(connect, after, limit)
        if not batch:
            assert after is not None
            return events, after
        events.extend(batch)


async def settle(db: Database, within: float = 10.0) -> None:
    """Wait until every committed event is old enough for the feed to hand out.

    On PostgreSQL a writing transaction still open anywhere on the server (another test run,
    say) holds back newer events; tests that assert exact pages wait for it to end.
    """
    if db.sync_engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + within
    query = text(
        "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint"
        " > COALESCE(MAX(tx_id), 0) FROM status_event"
    )
    while True:
        with db.sync_engine.connect() as connection:
            if connection.execute(query).scalar_one():
                return
        if time.monotonic() > deadline:
            raise AssertionError("a writing transaction kept the feed horizon back too long")
        await asyncio.sleep(0.02)
