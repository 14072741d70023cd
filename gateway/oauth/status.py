"""What a process knows about revoked tokens, disabled clients and habilitations in force.

Checking these on every request with a query would cost a database round trip per request;
instead each process keeps a snapshot, reloaded (three small queries) when it is older than
``token_status_refresh_seconds`` (1 s by default) or when this very process has committed a
change to any of them. The trade-off, stated: a change made in this process (a revocation at
``/oauth/revoke``, a client disabled or a habilitation changed through the ORM) applies to the
next request at once; a change made in another process (the CLI, another gateway worker)
applies within the refresh interval. Set the interval to 0 to read the state on every
request and trade that latency for strictness.

A change is noticed through SQLAlchemy session events (any flush touching a client, a
habilitation or a revocation marks the session; its commit bumps a process-wide generation),
so services need not know that a cache exists.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import event, select
from sqlalchemy.orm import Session, UOWTransaction

from gateway.database import Database, utcnow
from gateway.oauth.models import TokenRevocation
from gateway.partners.models import Habilitation, OAuthClient
from gateway.partners.repository import disabled_client_ids_query, habilitations_in_force_query
from gateway.partners.service import legal_today
from gateway.settings import Settings

log = structlog.get_logger(__name__)

_WATCHED = (OAuthClient, Habilitation, TokenRevocation)
_CHANGED = "gateway.token_status_changed"
_generations = itertools.count(1)
_generation = 0


def current_generation() -> int:
    return _generation


def note_token_status_changed() -> None:
    """Tell this process's snapshots that revocations, clients or habilitations changed."""
    global _generation
    _generation = next(_generations)


@event.listens_for(Session, "after_flush")
def _mark_session(session: Session, _flush_context: UOWTransaction) -> None:
    for instance in itertools.chain(session.new, session.dirty, session.deleted):
        if isinstance(instance, _WATCHED):
            session.info[_CHANGED] = True
            return


@event.listens_for(Session, "after_commit")
def _bump_on_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        note_token_status_changed()


@event.listens_for(Session, "after_soft_rollback")
def _forget_on_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_CHANGED, None)


@dataclass(frozen=True, slots=True)
class HabilitationGrant:
    """A habilitation in force, as the request path needs it (no ORM object leaves the cache)."""

    id: int
    partner_id: int
    partner_name: str
    partner_kind: str
    scope: str
    purposes: frozenset[str]
    legal_basis: str
    consent_required: bool
    valid_from_date: dt.date
    valid_until_date: dt.date | None
    rate_limit_per_minute: int | None
    released_fields: frozenset[str] | None = None
    """The releasable response fields this habilitation covers; None: all of them."""

    @classmethod
    def of(cls, row: Habilitation) -> HabilitationGrant:
        return cls(
            id=row.id,
            partner_id=row.partner_id,
            partner_name=row.partner.name,
            partner_kind=row.partner.kind,
            scope=row.scope,
            purposes=frozenset(row.purposes),
            legal_basis=row.legal_basis,
            consent_required=row.consent_required,
            valid_from_date=row.valid_from_date,
            valid_until_date=row.valid_until_date,
            rate_limit_per_minute=row.rate_limit_per_minute,
            released_fields=(
                None if row.released_fields is None else frozenset(row.released_fields)
            ),
        )


def _report_refresh_failure(task: asyncio.Task[StatusSnapshot]) -> None:
    # The snapshot in use stays valid until its interval ends; past it, requests reload it
    # themselves and a failure then refuses them (503).
    if not task.cancelled() and task.exception() is not None:
        log.warning("token_status_refresh_failed", error_type=type(task.exception()).__name__)


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    generation: int
    loaded_at: float
    day: dt.date
    revoked_jtis: frozenset[str]
    disabled_clients: frozenset[str]
    habilitations: Mapping[tuple[int, str], tuple[HabilitationGrant, ...]]

    def habilitations_for(self, partner_id: int, scope: str) -> tuple[HabilitationGrant, ...]:
        return self.habilitations.get((partner_id, scope), ())


class TokenStatus:
    """One process's snapshot, refreshed ahead of time, reloaded on the request path if stale.

    Past half its interval a snapshot is refreshed in the background while requests go on
    using it; only one older than the interval (the process was idle, or the database is slow
    or down) makes a request wait for a reload. Every request once waited for every periodic
    reload, so under load all requests in flight stalled once a second.
    """

    def __init__(
        self, settings: Settings, db: Database, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._db = db
        self._clock = clock
        self._ttl = settings.token_status_refresh_seconds
        self._leeway = dt.timedelta(seconds=settings.token_leeway_seconds)
        self._snapshot: StatusSnapshot | None = None
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[StatusSnapshot] | None = None

    async def current(self) -> StatusSnapshot:
        snapshot = self._snapshot
        if snapshot is None or self._stale(snapshot, self._ttl):
            return await self._reload(self._ttl)
        if self._stale(snapshot, self._ttl / 2) and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._reload(self._ttl / 2))
            self._refresh.add_done_callback(_report_refresh_failure)
        return snapshot

    async def reload_if_older_than(self, seconds: float) -> StatusSnapshot:
        """Reload unless the snapshot is fresher than ``seconds``: a bounded way to look again
        when a request contradicts the snapshot (a habilitation granted a moment ago)."""
        return await self._reload(seconds)

    def _stale(self, snapshot: StatusSnapshot, max_age: float) -> bool:
        return snapshot.generation != _generation or self._clock() - snapshot.loaded_at >= max_age

    async def _reload(self, max_age: float) -> StatusSnapshot:
        async with self._lock:
            snapshot = self._snapshot
            # Another request may have reloaded while this one waited for the lock.
            if snapshot is not None and not self._stale(snapshot, max_age):
                return snapshot
            snapshot = await self._load()
            self._snapshot = snapshot
            return snapshot

    async def _load(self) -> StatusSnapshot:
        generation = _generation
        loaded_at = self._clock()
        now = utcnow()
        day = legal_today(self._settings, now)
        async with self._db.session() as session:
            revoked = await session.scalars(
                select(TokenRevocation.jti).where(TokenRevocation.expires_at > now - self._leeway)
            )
            revoked_jtis = frozenset(revoked)
            disabled_clients = frozenset(await session.scalars(disabled_client_ids_query()))
            rows = await session.scalars(habilitations_in_force_query(day))
            grouped: dict[tuple[int, str], list[HabilitationGrant]] = {}
            for row in rows:
                grouped.setdefault((row.partner_id, row.scope), []).append(
                    HabilitationGrant.of(row)
                )
        return StatusSnapshot(
            generation=generation,
            loaded_at=loaded_at,
            day=day,
            revoked_jtis=revoked_jtis,
            disabled_clients=disabled_clients,
            habilitations={key: tuple(grants) for key, grants in grouped.items()},
        )
