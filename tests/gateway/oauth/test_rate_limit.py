"""Rate limits per client and scope, counted in the database for every process."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import Depends, FastAPI
from oauth_support import JwtClient, Registry, bearer, fetch_token, protected_router
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.database import Database
from gateway.errors import NotFoundError
from gateway.oauth.models import RateLimitCounter
from gateway.oauth.ratelimit import RateLimiter
from gateway.oauth.resource import require_scope
from gateway.oauth.tokens import TokenClaims
from gateway.settings import Settings


def mid_window() -> float:
    """A clock halfway through one window: ranks restart at a window's turn, and a test
    counting them must not straddle one, however slowly the machine runs it."""
    return 1_800_000_030.0


@pytest.fixture
def limited(registry: Registry) -> JwtClient:
    registry.partner("AGEFICE", "training-fund")
    client = registry.jwt_client("AGEFICE")
    registry.grant("turnover:read", "AGEFICE", rate_limit=3)
    return client


def count_writes(limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The limiter's counter writes, as they happen: the number of hits each carried."""
    writes: list[int] = []
    write = limiter._write

    async def counting(increments: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        writes.append(sum(increments.values()))
        return await write(increments)

    monkeypatch.setattr(limiter, "_write", counting)
    return writes


async def test_the_habilitation_limit_gives_429_with_retry_after(
    http: httpx.AsyncClient, limited: JwtClient
) -> None:
    token = await fetch_token(http, limited, "turnover:read")
    remaining = []
    for _ in range(3):
        response = await http.get("/api/test/turnover", headers=bearer(token))
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "3"
        remaining.append(int(response.headers["ratelimit-remaining"]))
    refused = await http.get("/api/test/turnover", headers=bearer(token))

    assert remaining == [2, 1, 0]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limit.exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"


async def test_ratelimit_headers_are_on_every_response_even_an_error_after_the_check(
    http: httpx.AsyncClient, app: FastAPI, limited: JwtClient
) -> None:
    @app.get("/api/test/missing")
    async def missing(claims: TokenClaims = Depends(require_scope("turnover:read"))) -> None:
        raise NotFoundError("test.not_found", "Nothing here.")

    token = await fetch_token(http, limited, "turnover:read")
    response = await http.get("/api/test/missing", headers=bearer(token))
    assert response.status_code == 404
    assert response.headers["ratelimit-limit"] == "3"
    assert response.headers["ratelimit-remaining"] == "2"
    assert response.headers["ratelimit-policy"] == "3;w=60"


async def test_without_a_habilitation_limit_the_default_applies(
    http: httpx.AsyncClient, caf: JwtClient, settings: Settings
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    response = await http.get("/api/test/turnover", headers=bearer(token))
    assert response.headers["ratelimit-limit"] == str(settings.rate_limit_per_minute)


async def test_two_gateway_processes_share_one_count(
    settings: Settings, limited: JwtClient
) -> None:
    apps = [create_app(settings), create_app(settings)]
    responses = []
    for app in apps:
        app.include_router(protected_router)
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps[0]), base_url=settings.issuer
        ) as first,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=apps[1]), base_url=settings.issuer
        ) as second,
    ):
        token = await fetch_token(first, limited, "turnover:read")
        for http in (first, second, first, second):
            responses.append(await http.get("/api/test/turnover", headers=bearer(token)))
    assert [r.status_code for r in responses] == [200, 200, 200, 429]


async def test_concurrent_hits_are_counted_exactly_and_written_together(
    async_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = async_db
    limiter = RateLimiter(db.async_engine, clock=mid_window)
    writes = count_writes(limiter, monkeypatch)
    try:
        decisions = await asyncio.gather(
            *(limiter.hit("client-a turnover:read", 25) for _ in range(30))
        )
        other = await limiter.hit("client-b turnover:read", 25)
    finally:
        await limiter.close()

    assert sorted(d.remaining for d in decisions) == [0] * 6 + list(range(1, 25))
    assert sum(d.allowed for d in decisions) == 25
    assert other.remaining == 24
    assert len(writes) < 31
    with db.sync_session() as session:
        total = session.scalar(select(func.sum(RateLimitCounter.hits)))
    assert total == 31


async def test_two_processes_hitting_at_the_same_time_never_share_a_rank(
    settings: Settings,
) -> None:
    # Two engines, two pools, two limiters: what two gateway processes would hold.
    databases = [Database(settings.database_url), Database(settings.database_url)]
    limiters = [RateLimiter(database.async_engine, clock=mid_window) for database in databases]
    try:
        decisions = await asyncio.gather(
            *(limiters[i % 2].hit("client-c status:read", 1000) for i in range(40))
        )
    finally:
        for limiter in limiters:
            await limiter.close()
        for database in databases:
            await database.dispose()
    ranks = [1000 - decision.remaining for decision in decisions]
    assert len(set(ranks)) == 40
    assert all(decision.allowed for decision in decisions)
    # Each process may hold back a lease of at most a hundredth of the limit, unused.
    assert max(ranks) <= 40 + 2 * (1000 // 100)


async def test_one_process_hands_out_ranks_in_arrival_order_from_leases(
    async_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RateLimiter(async_db.async_engine, clock=mid_window)
    writes = count_writes(limiter, monkeypatch)
    try:
        decisions = [await limiter.hit("client-d status:read", 100_000) for _ in range(500)]
    finally:
        await limiter.close()

    assert [100_000 - d.remaining for d in decisions] == list(range(1, 501))
    # Each write: the waiting request plus a lease twice the last, 1, 2, 4, ... ranks ahead;
    # nine writes for 500 requests, not 500.
    assert writes == [1 + 2**n for n in range(9)]
    with async_db.sync_session() as session:
        reserved = session.scalar(select(func.sum(RateLimitCounter.hits)))
    assert reserved is not None
    assert 500 <= reserved <= 500 + 100_000 // 100


async def test_two_processes_together_admit_exactly_the_limit(settings: Settings) -> None:
    databases = [Database(settings.database_url), Database(settings.database_url)]
    limiters = [RateLimiter(database.async_engine, clock=mid_window) for database in databases]
    decisions = []
    try:
        for start in range(0, 400, 20):
            decisions += await asyncio.gather(
                *(limiters[i % 2].hit("client-e cfp:read", 300) for i in range(start, start + 20))
            )
    finally:
        for limiter in limiters:
            await limiter.close()
        for database in databases:
            await database.dispose()
    assert sum(decision.allowed for decision in decisions) == 300
    admitted = [300 - d.remaining for d in decisions if d.allowed]
    assert len(set(admitted)) == 300


async def test_requests_arriving_during_a_write_take_the_lease_it_brings(
    async_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RateLimiter(async_db.async_engine, clock=mid_window)
    write = limiter._write
    writing = asyncio.Event()
    release = asyncio.Event()
    writes = 0

    async def held(increments: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        nonlocal writes
        writes += 1
        writing.set()
        await release.wait()
        return await write(increments)

    monkeypatch.setattr(limiter, "_write", held)
    try:
        first = asyncio.create_task(limiter.hit("client-g status:read", 100_000))
        await writing.wait()
        # The write carries the first hit and a lease of one rank ahead, which this one takes.
        during = asyncio.create_task(limiter.hit("client-g status:read", 100_000))
        await asyncio.sleep(0)
        release.set()
        ranks = [100_000 - (await task).remaining for task in (first, during)]
    finally:
        await limiter.close()
    assert ranks == [1, 2]
    assert writes == 1


async def test_a_new_window_starts_from_rank_one_whatever_was_leased_before(
    async_db: Database,
) -> None:
    now = [1_800_000_000.0]  # the start of a window
    limiter = RateLimiter(async_db.async_engine, clock=lambda: now[0])
    try:
        before = [await limiter.hit("client-f status:read", 10_000) for _ in range(20)]
        now[0] += 60
        after = await limiter.hit("client-f status:read", 10_000)
    finally:
        await limiter.close()
    assert before[-1].remaining == 10_000 - 20
    assert after.remaining == 10_000 - 1
    assert after.reset_seconds == 60


@pytest.mark.postgresql_only
def test_counters_are_unlogged_on_postgresql_so_their_commit_never_waits_for_the_disk(
    db: Database,
) -> None:
    with db.sync_engine.connect() as connection:
        persistence = connection.exec_driver_sql(
            "SELECT relpersistence FROM pg_class WHERE relname = 'rate_limit_counter'"
        ).scalar_one()
    assert persistence == "u"
