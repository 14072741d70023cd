"""Rate limiting per client and scope, shared by every gateway process through the database.

Counting: a fixed one-minute window per bucket (``client_id`` and scope), one counter row per
(bucket, window), incremented with ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``: the
database serialises increments, so several processes on one PostgreSQL hand out distinct ranks
and a window never admits more than its limit in total.

Speed: a database write per request would halve the throughput of the request path, so a
process reserves ranks ahead of its requests. Requests that find no reserved rank wait for the
next write, which adds up all their hits per bucket in a single multi-row statement, plus a
lease: a run of further ranks, handed out locally, in order, to the requests that come next.
Each lease is twice the previous one, up to a hundredth of the limit (a limit under 100
leases nothing: every hit is written as it comes), so a busy client's requests seldom wait for
the database. In one process ranks are handed out exactly in order of arrival. Across
processes a rank leased by one and left unused goes to no other: a client may be refused while
up to a hundredth of its limit per other process is leased and unused, and is never admitted
beyond its limit.

Headers (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset`` (seconds) and ``RateLimit-Policy`` on every response of a rate-limited
request whatever the route returns (the token check hands them to
:func:`gateway.middleware.add_response_headers`), and ``Retry-After`` on a 429.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.oauth.models import RateLimitCounter
from gateway.reads import HeldConnection, compile_read

WINDOW_SECONDS = 60
# A process holds at most this share of a limit leased ahead of its requests.
_LEASE_SHARE = 100
# Rows of windows older than this are deleted, at most once per interval per process.
_KEEP_SECONDS = 3600
_PURGE_INTERVAL_SECONDS = 300

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    limit: int
    remaining: int
    reset_seconds: int
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={WINDOW_SECONDS}",
        }


_Key = tuple[str, int]


@dataclass(slots=True)
class _Lease:
    """Ranks of one window reserved by this process: ``next`` to ``last``, in order."""

    next: int
    last: int


_UPSERT_POSTGRESQL = text(
    "INSERT INTO rate_limit_counter (bucket, window_start_epoch, hits) "
    "SELECT * FROM unnest(CAST(:buckets AS text[]), CAST(:windows AS integer[]), "
    "CAST(:hits AS integer[])) "
    "ON CONFLICT (bucket, window_start_epoch) "
    "DO UPDATE SET hits = rate_limit_counter.hits + excluded.hits "
    "RETURNING bucket, window_start_epoch, hits"
)


class RateLimiter:
    """Counts hits per bucket in the database: concurrent hits of one process are written
    together, and ranks are leased ahead of the requests to come (see the module)."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._connection = HeldConnection(engine)
        self._upsert_postgresql = (
            compile_read(_UPSERT_POSTGRESQL, engine.dialect)
            if engine.dialect.name == "postgresql"
            else None
        )
        self._clock = clock
        self._pending: dict[_Key, list[asyncio.Future[int]]] = {}
        self._limits: dict[_Key, int] = {}
        self._leases: dict[_Key, _Lease] = {}
        # Per bucket: how many ranks its latest write reserved ahead; the next one doubles it.
        self._lease_sizes: dict[str, int] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._last_purge = 0.0

    async def close(self) -> None:
        """Give back the connection the counters were written on (the app is stopping)."""
        if self._flusher is not None and not self._flusher.done():
            await self._flusher
        await self._connection.close()

    async def hit(self, bucket: str, limit: int) -> RateLimitDecision:
        now = self._clock()
        window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        key = (bucket, window_start)
        lease = self._leases.get(key)
        if lease is not None and lease.next <= lease.last:
            rank = lease.next
            lease.next += 1
        else:
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._pending.setdefault(key, []).append(future)
            self._limits[key] = limit
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_while_pending())
            rank = await future
        reset = max(1, window_start + WINDOW_SECONDS - int(now))
        return RateLimitDecision(
            limit=limit,
            remaining=max(0, limit - rank),
            reset_seconds=reset,
            allowed=rank <= limit,
        )

    def _ahead(self, bucket: str, limit: int) -> int:
        """How many ranks the next write of ``bucket`` reserves beyond its waiting requests."""
        return min(limit // _LEASE_SHARE, max(1, 2 * self._lease_sizes.get(bucket, 0)))

    async def _flush_while_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            limits, self._limits = self._limits, {}
            ahead = {key: self._ahead(key[0], limits[key]) for key in batch}
            try:
                totals = await self._write(
                    {key: len(waiters) + ahead[key] for key, waiters in batch.items()}
                )
            except Exception as exc:
                log.warning("rate_limit_write_failed", error_type=type(exc).__name__)
                for waiters in batch.values():
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                continue
            current_window = max(window for _, window in batch)
            for key in [key for key in self._leases if key[1] < current_window]:
                del self._leases[key]
            for key, waiters in batch.items():
                lease = _Lease(next=totals[key] - len(waiters) - ahead[key] + 1, last=totals[key])
                self._leases[key] = lease
                self._lease_sizes[key[0]] = ahead[key]
                self._give_ranks(lease, waiters)
                # Requests that came during the write take the new lease before writing again.
                later = self._pending.get(key)
                if later:
                    self._give_ranks(lease, later)
                    if not later:
                        del self._pending[key]

    @staticmethod
    def _give_ranks(lease: _Lease, waiters: list[asyncio.Future[int]]) -> None:
        """Give the lease's ranks, in order, to as many waiters as it has ranks, first come
        first; those served leave ``waiters``."""
        served = 0
        for waiter in waiters:
            if lease.next > lease.last:
                break
            served += 1
            if not waiter.done():
                waiter.set_result(lease.next)
                lease.next += 1
        del waiters[:served]

    async def _write(self, increments: dict[_Key, int]) -> dict[_Key, int]:
        # Sorted rows: two processes lock the same counters in the same order, no deadlock.
        ordered = sorted(increments.items())
        if self._upsert_postgresql is not None:
            # One statement of fixed text, run by asyncpg outside any transaction: prepared
            # once per connection, one round trip, committed on its own.
            result = await self._connection.fetch(
                self._upsert_postgresql,
                {
                    "buckets": [bucket for (bucket, _), _ in ordered],
                    "windows": [window for (_, window), _ in ordered],
                    "hits": [count for _, count in ordered],
                },
            )
            totals = {(row[0], row[1]): row[2] for row in result}
        else:
            rows = [
                {"bucket": bucket, "window_start_epoch": window, "hits": count}
                for (bucket, window), count in ordered
            ]
            statement: Any = sqlite.insert(RateLimitCounter).values(rows)
            statement = statement.on_conflict_do_update(
                index_elements=["bucket", "window_start_epoch"],
                set_={"hits": RateLimitCounter.hits + statement.excluded.hits},
            ).returning(
                RateLimitCounter.bucket, RateLimitCounter.window_start_epoch, RateLimitCounter.hits
            )
            async with self._engine.begin() as connection:
                totals = {(row[0], row[1]): row[2] for row in await connection.execute(statement)}
        now = self._clock()
        if now - self._last_purge >= _PURGE_INTERVAL_SECONDS:
            self._last_purge = now
            async with self._engine.begin() as connection:
                await connection.execute(
                    delete(RateLimitCounter).where(
                        RateLimitCounter.window_start_epoch < int(now) - _KEEP_SECONDS
                    )
                )
        return totals
