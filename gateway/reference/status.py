"""An account's current status, derived from its status events.

Upstream sends status changes as events; the account row keeps the outcome (regime, start of
the current affiliation, radiation date and reason) so that a lookup reads one row. Those
columns are never written from anything but the events: :func:`derive_status` replays them and
:func:`apply_derived_status` stores the result.

Replay rules, in (effective_date, id) order:

- ``affiliation``: the person is affiliated (again) from that date; any radiation is cleared.
  Its detail, when it names a regime (the accounts load writes the regime there), sets it.
- ``radiation``: sets the radiation date and reason (the event's detail).
- ``regime_change``: sets the regime named by the detail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, bindparam, select, update

from gateway.reference.models import Account, Regime, StatusEvent, StatusEventKind

__all__ = ["AccountStatus", "StatusEventLike", "apply_derived_status", "derive_status"]

_REGIMES = frozenset(member.value for member in Regime)
# Bounded so the IN lists stay well under both databases' bind-parameter limits.
_CHUNK = 2000


class StatusEventLike(Protocol):
    """What the replay reads from an event: a ``StatusEvent`` row or any look-alike."""

    @property
    def id(self) -> int: ...
    @property
    def event(self) -> str: ...
    @property
    def effective_date(self) -> dt.date: ...
    @property
    def detail(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AccountStatus:
    regime: str
    affiliation_date: dt.date
    radiation_date: dt.date | None = None
    radiation_reason: str | None = None

    @property
    def is_radiated(self) -> bool:
        return self.radiation_date is not None


def derive_status(start: AccountStatus, events: Iterable[StatusEventLike]) -> AccountStatus:
    """The status after replaying ``events`` over ``start``.

    ``start`` supplies what no event may state: the regime when no affiliation names one, the
    affiliation date when there is no affiliation event. Radiation comes from the events only.
    """
    regime = start.regime
    affiliation_date = start.affiliation_date
    radiation_date: dt.date | None = None
    radiation_reason: str | None = None
    for event in sorted(events, key=lambda item: (item.effective_date, item.id)):
        if event.event == StatusEventKind.AFFILIATION:
            affiliation_date = event.effective_date
            radiation_date = radiation_reason = None
            if event.detail in _REGIMES:
                regime = event.detail
        elif event.event == StatusEventKind.RADIATION:
            radiation_date = event.effective_date
            radiation_reason = event.detail
        elif event.event == StatusEventKind.REGIME_CHANGE and event.detail in _REGIMES:
            regime = event.detail
    return AccountStatus(regime, affiliation_date, radiation_date, radiation_reason)


def apply_derived_status(
    connection: Connection, account_ids: Collection[int], now: dt.datetime
) -> int:
    """Recompute the status columns of ``account_ids`` from their events; return how many changed.

    Runs inside the caller's transaction. Accounts without any event are left alone.
    """
    ids = sorted(set(account_ids))
    changed = 0
    for start in range(0, len(ids), _CHUNK):
        changed += _apply_chunk(connection, ids[start : start + _CHUNK], now)
    return changed


def _apply_chunk(connection: Connection, ids: list[int], now: dt.datetime) -> int:
    accounts = {
        row.id: AccountStatus(
            row.regime, row.affiliation_date, row.radiation_date, row.radiation_reason
        )
        for row in connection.execute(
            select(
                Account.id,
                Account.regime,
                Account.affiliation_date,
                Account.radiation_date,
                Account.radiation_reason,
            ).where(Account.id.in_(ids))
        )
    }
    events: dict[int, list[StatusEventLike]] = {}
    for event in connection.execute(
        select(
            StatusEvent.id,
            StatusEvent.account_id,
            StatusEvent.event,
            StatusEvent.effective_date,
            StatusEvent.detail,
        ).where(StatusEvent.account_id.in_(ids))
    ):
        events.setdefault(event.account_id, []).append(event)

    updates = []
    for account_id, account_events in events.items():
        current = accounts.get(account_id)
        if current is None:
            continue
        derived = derive_status(
            AccountStatus(current.regime, current.affiliation_date), account_events
        )
        if derived != current:
            updates.append(
                {
                    "b_id": account_id,
                    "regime": derived.regime,
                    "affiliation_date": derived.affiliation_date,
                    "radiation_date": derived.radiation_date,
                    "radiation_reason": derived.radiation_reason,
                    "updated_at": now,
                }
            )
    if updates:
        connection.execute(
            update(Account).where(Account.id == bindparam("b_id")),
            updates,
        )
    return len(updates)
