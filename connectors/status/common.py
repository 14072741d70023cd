"""What the status versions read: an account's current status and its status events.

An account's ``regime``, ``affiliation_date`` and radiation columns are kept up to date from its
events by ingestion; the events themselves (affiliation, radiation, regime change) are the
history. Nothing here is part of a published schema: versions shape these facts themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ScalarSelect, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.kit import Subject, SubjectNotFound
from gateway.reference.models import Account, IngestionRun, StatusEvent

SOURCE = "URSSAF — reference store"
STATUS_DATASETS = ("accounts", "status-events")

REGIME_LABELS = {
    "micro": "Micro-entrepreneur",
    "classique": "Travailleur indépendant (régime classique)",
}
CATEGORY_LABELS = {
    "artisan": "Artisan",
    "commercant": "Commerçant",
    "liberal": "Profession libérale",
}


def as_of(*datasets: str) -> ScalarSelect[dt.datetime]:
    """When the datasets an answer reads were last loaded, as a column of the main query.

    Riding along as a scalar subquery costs no round trip and is never stale, unlike a cache.
    """
    # ``dataset = :a OR dataset = :b`` rather than ``IN``: an IN list is re-rendered into the
    # SQL at every execution (SQLAlchemy's expanding parameters), a cost paid on every lookup.
    return (
        select(func.max(IngestionRun.finished_at))
        .where(or_(*(IngestionRun.dataset == dataset for dataset in datasets)))
        .scalar_subquery()
    )


@dataclass(frozen=True)
class Event:
    event: str
    effective_date: dt.date
    detail: str | None


@dataclass(frozen=True)
class Status:
    siren: str
    subjects: tuple[Subject, ...]
    regime: str
    category: str
    affiliation_date: dt.date
    radiation_date: dt.date | None
    radiation_reason: str | None
    history: tuple[Event, ...]
    as_of: dt.datetime | None


async def read_status(
    session: AsyncSession, *, siren: str | None = None, nir: str | None = None
) -> Status:
    """The account with this SIREN or NIR (exactly one given) and its events, in one query.

    Raises ``SubjectNotFound("subject.unknown")`` when no account has the identifier.
    """
    if (siren is None) == (nir is None):
        raise ValueError("give exactly one of siren and nir")
    rows = (
        await session.execute(
            select(
                Account.siren,
                Account.regime,
                Account.category,
                Account.affiliation_date,
                Account.radiation_date,
                Account.radiation_reason,
                StatusEvent.event,
                StatusEvent.effective_date,
                StatusEvent.detail,
                as_of(*STATUS_DATASETS),
            )
            .outerjoin(StatusEvent, StatusEvent.account_id == Account.id)
            .where(Account.siren == siren if siren is not None else Account.nir == nir)
            .order_by(StatusEvent.effective_date, StatusEvent.id)
        )
    ).all()
    if not rows:
        raise SubjectNotFound("subject.unknown", "No account is known for this identifier.")
    first = rows[0]
    subjects: tuple[Subject, ...] = (Subject("siren", first.siren),)
    if nir is not None:
        # Both identifiers, so the audit trail finds this disclosure by either of them.
        subjects = (Subject("nir", nir), *subjects)
    return Status(
        siren=first.siren,
        subjects=subjects,
        regime=first.regime,
        category=first.category,
        affiliation_date=first.affiliation_date,
        radiation_date=first.radiation_date,
        radiation_reason=first.radiation_reason,
        history=tuple(
            Event(row.event, row.effective_date, row.detail)
            for row in rows
            if row.event is not None
        ),
        as_of=first[-1],
    )
