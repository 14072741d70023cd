"""The status change feed: every affiliation, radiation and regime change, in order, paged.

Consumers: CAF and CNAM, which receive "a flow of affiliations and radiations" instead of
asking person by person. Operation (under ``/api/v1``, scope ``status:feed``)::

    GET /status/events?after=CURSOR&limit=N  ->  {"events": [...], "next_cursor": "..."}

Without ``after`` the feed starts at its beginning. Passing ``next_cursor`` back as ``after``
continues where the page ended; a page with no events returns the cursor it was given, so a
consumer simply polls with its last cursor. ``limit`` is 100 by default, 1 to 1000.
Cursors are opaque to consumers (base64url of the last position read); they live with the
consumer, so the gateway keeps no per-consumer state and any process can serve any page.

Error codes (422): ``cursor.invalid`` (a cursor this feed did not issue), ``limit.invalid``.

Why no event is ever skipped
----------------------------
Delivery is gap-free and at least once: following the cursors yields every committed event
exactly once, and a consumer that replays a cursor (after a crash, say) gets the same events
again. Ordering by event id alone would lose events on PostgreSQL: transaction T1 takes id 10,
T2 takes id 11, T2 commits, a consumer reads 11 and moves its cursor past it, then T1 commits
10 behind the cursor.

So every event records ``tx_id``, the id of the transaction that inserted it (the column's
server default ``pg_current_xact_id()``, set by migration 0005, so writers need not know), and
the feed orders by ``(tx_id, id)``. A page only returns events with
``tx_id < pg_snapshot_xmin(pg_current_snapshot())``. That ``xmin`` is the oldest transaction
still running when the page's query took its snapshot: every transaction below it has ended,
so all of their events are visible to the query, and any transaction that may still commit an
event has an id at or above it, hence larger than the ``tx_id`` of anything returned: its
events sort after the cursor whenever they commit. The price: an event waits until every older
writing transaction has ended, so feed latency is bounded by the longest-running writing
transaction of the whole server (not only of this table).

SQLite has a single writer: a transaction holds the write lock from its first insert to its
commit, so ids are assigned in commit order. ``tx_id`` is 0 there, ``(0, id)`` is commit order,
and no visibility filter is needed.

Events are never deleted; an event updated in place is not delivered again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Integer, Text, bindparam, cast, func, select, tuple_

from connectors.kit import (
    ConnectorContext,
    ConnectorVersion,
    Disclosure,
    InvalidRequest,
    Provenance,
    Subject,
)
from connectors.status.common import SOURCE
from gateway.reads import Prepared, Reader
from gateway.reference.freshness import loaded_at
from gateway.reference.models import Account, StatusEvent

VERSION = ConnectorVersion(
    # Versions are keyed by ``dataset.vN``: the feed is a version of its own beside status v1.
    dataset="status-events",
    version=1,
    scope="status:feed",
    title="Self-employed status change feed: affiliations, radiations, regime changes",
    consumers=["CAF", "CNAM"],
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
FEED_DATASETS = ("accounts", "status-events")

Position = tuple[int, int]
START: Position = (0, 0)
_MAX_POSITION = 2**63 - 1
_MAX_CURSOR_LENGTH = 64
_CURSOR_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


class StatusFeedEventV1(BaseModel):
    """One status change of one account."""

    id: int = Field(description="The event's id: stable, unique, but not a position to page by.")
    siren: str = Field(description="SIREN of the account the event is about.")
    event: Literal["affiliation", "radiation", "regime_change"] = Field(
        description="What happened: affiliation, radiation or regime change."
    )
    effective_date: dt.date = Field(description="The date the change took effect.")
    detail: str | None = Field(
        description="What the upstream system says about it (e.g. the radiation reason or the "
        "new regime); null when it says nothing."
    )
    recorded_at: dt.datetime = Field(description="When URSSAF recorded the event (UTC).")


class StatusFeedPageV1(Provenance):
    """A page of the status change feed.

    Invalid request (422) codes: `cursor.invalid`, `limit.invalid`.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": SOURCE,
                    "as_of": "2026-07-01T03:12:45Z",
                    "events": [
                        {
                            "id": 48213,
                            "siren": "732829320",
                            "event": "radiation",
                            "effective_date": "2026-06-30",
                            "detail": "cessation d'activité",
                            "recorded_at": "2026-07-01T03:12:40Z",
                        }
                    ],
                    "next_cursor": "WzkxMjMsNDgyMTNd",
                }
            ]
        }
    )

    events: list[StatusFeedEventV1] = Field(
        description="Events after the cursor, in feed order; empty when there are none yet."
    )
    next_cursor: str = Field(
        description="Pass it as `after` to continue; the same cursor when the page is empty."
    )


def encode_cursor(position: Position) -> str:
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Position:
    """The position a cursor stands for, or ``InvalidRequest("cursor.invalid")``."""
    invalid = InvalidRequest("cursor.invalid", "The cursor was not issued by this feed.")
    if len(cursor) > _MAX_CURSOR_LENGTH or not _CURSOR_ALPHABET.fullmatch(cursor):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # Decoded as ASCII first: ``json.loads`` on bytes would also accept UTF-16 and UTF-32.
        value: Any = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError):
        raise invalid from None
    # ``bool`` is an ``int`` subclass: ``[true, 3]`` is not a position.
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(type(part) is int and 0 <= part <= _MAX_POSITION for part in value)
    ):
        raise invalid
    return value[0], value[1]


def _feed_query(*, below_horizon: bool) -> Prepared:
    query = (
        select(
            StatusEvent.tx_id,
            StatusEvent.id,
            Account.siren,
            StatusEvent.event,
            StatusEvent.effective_date,
            StatusEvent.detail,
            StatusEvent.recorded_at,
            loaded_at(*FEED_DATASETS),
        )
        .join(Account, Account.id == StatusEvent.account_id)
        .where(
            tuple_(StatusEvent.tx_id, StatusEvent.id)
            > tuple_(bindparam("after_tx", type_=BigInteger), bindparam("after_id", type_=Integer))
        )
        .order_by(StatusEvent.tx_id, StatusEvent.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if below_horizon:
        # See the module docstring: nothing at or above the oldest running transaction.
        horizon = cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)
        query = query.where(StatusEvent.tx_id < horizon)
    return Prepared(query)


_FEED = _feed_query(below_horizon=False)
_FEED_POSTGRESQL = _feed_query(below_horizon=True)
_AS_OF = Prepared(select(loaded_at(*FEED_DATASETS)))


async def read_events(
    reader: Reader, after: Position, limit: int
) -> tuple[list[StatusFeedEventV1], Position, dt.datetime | None]:
    """Up to ``limit`` events after ``after``, the position of the last one, and ``as_of``."""
    query = _FEED_POSTGRESQL if reader.dialect_name == "postgresql" else _FEED
    rows = await reader.all(query, after_tx=after[0], after_id=after[1], limit=limit)
    events = [
        StatusFeedEventV1.model_validate(
            {
                "id": event_id,
                "siren": siren,
                "event": event,
                "effective_date": effective_date,
                "detail": detail,
                "recorded_at": recorded_at,
            }
        )
        for _, event_id, siren, event, effective_date, detail, recorded_at, _ in rows
    ]
    position = (rows[-1][0], rows[-1][1]) if rows else after
    # Every row carries the same ``as_of``; an empty page reads it on its own.
    freshness = rows[0][-1] if rows else await reader.scalar(_AS_OF)
    return events, position, freshness


@VERSION.operation(
    "GET",
    "/status/events",
    response_model=StatusFeedPageV1,
    summary="Status change feed: the events after a cursor",
    bulk=True,
)
async def status_events(
    *,
    after: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page; absent to start at the beginning."),
    ] = None,
    limit: Annotated[
        int, Query(description=f"Most events to return, 1 to {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    ctx: ConnectorContext,
) -> Disclosure[StatusFeedPageV1]:
    """The status events after `after`, oldest first, and the cursor to continue from.

    Every event is delivered, even one committed late by a slow writer (see the feed's
    ordering). 422 codes: `cursor.invalid`, `limit.invalid`.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(
            "limit.invalid",
            f"limit must be between 1 and {MAX_LIMIT}.",
            extra={"max_limit": MAX_LIMIT},
        )
    position = decode_cursor(after) if after is not None else START
    events, next_position, freshness = await read_events(ctx.reader, position, limit)
    # One subject per account whose data the page carries, each once, for the audit trail.
    subjects = [Subject("siren", siren) for siren in dict.fromkeys(e.siren for e in events)]
    body = StatusFeedPageV1(
        source=SOURCE,
        as_of=freshness,
        events=events,
        next_cursor=encode_cursor(next_position),
    )
    return Disclosure(body=body, subjects=subjects)
