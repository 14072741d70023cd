"""The token-state snapshot is refreshed ahead of time: requests never wait for a periodic reload,
and none is served from a snapshot older than the refresh interval."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from factories import ManualClock

from gateway.database import Database
from gateway.oauth import status
from gateway.oauth.status import StatusSnapshot, TokenStatus
from gateway.settings import Settings


class SlowLoads:
    """Stands for the three queries: each load takes until released, and is counted."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.started = 0
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self) -> StatusSnapshot:
        self.started += 1
        loaded_at = self.clock()
        await self.release.wait()
        if self.fail:
            raise OSError("the database is down")
        return StatusSnapshot(
            generation=status.current_generation(),
            loaded_at=loaded_at,
            day=dt.date(2026, 1, 1),
            revoked_jtis=frozenset({f"jti-{self.started}"}),
            disabled_clients=frozenset(),
            habilitations={},
        )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def loads(clock: ManualClock) -> SlowLoads:
    return SlowLoads(clock)


@pytest.fixture
def token_status(
    settings: Settings,
    db: Database,
    clock: ManualClock,
    loads: SlowLoads,
    monkeypatch: pytest.MonkeyPatch,
) -> TokenStatus:
    made = TokenStatus(
        settings.model_copy(update={"token_status_refresh_seconds": 1.0}), db, clock=clock
    )
    monkeypatch.setattr(made, "_load", loads)
    return made


async def _first(token_status: TokenStatus, loads: SlowLoads) -> StatusSnapshot:
    loads.release.set()
    snapshot = await token_status.current()
    loads.release.clear()
    return snapshot


async def test_past_half_the_interval_requests_go_on_while_a_refresh_runs(
    token_status: TokenStatus, loads: SlowLoads, clock: ManualClock
) -> None:
    first = await _first(token_status, loads)
    clock.now = 0.6
    # The load is held: a request that waited for it would never return.
    assert await asyncio.wait_for(token_status.current(), timeout=1) is first
    assert await asyncio.wait_for(token_status.current(), timeout=1) is first
    await asyncio.sleep(0)
    assert loads.started == 2  # one refresh for both requests
    loads.release.set()
    await asyncio.sleep(0.01)
    refreshed = await token_status.current()
    assert refreshed is not first
    assert refreshed.revoked_jtis == {"jti-2"}


async def test_no_request_is_served_from_a_snapshot_older_than_the_interval(
    token_status: TokenStatus, loads: SlowLoads, clock: ManualClock
) -> None:
    first = await _first(token_status, loads)
    clock.now = 1.0
    waiting = asyncio.create_task(token_status.current())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # it waits for the reload
    loads.release.set()
    assert await waiting is not first


async def test_a_failed_refresh_keeps_the_snapshot_until_the_interval_then_refuses(
    token_status: TokenStatus, loads: SlowLoads, clock: ManualClock
) -> None:
    first = await _first(token_status, loads)
    loads.fail = True
    loads.release.set()
    clock.now = 0.6
    assert await token_status.current() is first
    await asyncio.sleep(0.01)  # the refresh fails in the background
    assert await token_status.current() is first
    clock.now = 1.0
    with pytest.raises(OSError, match="down"):
        await token_status.current()
