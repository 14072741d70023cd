"""What the status versions read: an account's current status and its status events.

An account's ``regime``, ``affiliation_date`` and radiation columns are kept up to date from its
events by ingestion; the events themselves (affiliation, radiation, regime change) are the
history. Nothing here is part of a published schema: versions shape these facts themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import InstrumentedAttribute

from connectors.kit import Subject, SubjectNotFound
from gateway.reads import Prepared, Reader
from gateway.reference.freshness import loaded_at
from gateway.reference.models import Account, StatusEvent

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


def _status_query(identifier: InstrumentedAttribute[str]) -> Prepared:
    """The account with this identifier and its events (one row per event), in one query."""
    return Prepared(
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
            loaded_at(*STATUS_DATASETS),
        )
        .outerjoin(StatusEvent, StatusEvent.account_id == Account.id)
        .where(identifier == bindparam("identifier"))
        .order_by(StatusEvent.effective_date, StatusEvent.id)
    )


_BY_SIREN = _status_query(Account.siren)
_BY_NIR = _status_query(Account.nir)


async def read_status(
    reader: Reader, *, siren: str | None = None, nir: str | None = None
) -> Status:
    """The account with this SIREN or NIR (exactly one given) and its events.

    Raises ``SubjectNotFound("subject.unknown")`` when no account has the identifier.
    """
    if (siren is None) == (nir is None):
        raise ValueError("give exactly one of siren and nir")
    if siren is not None:
        rows = await reader.all(_BY_SIREN, identifier=siren)
    else:
        rows = await reader.all(_BY_NIR, identifier=nir)
    if not rows:
        raise SubjectNotFound("subject.unknown", "No account is known for this identifier.")
    account_siren, regime, category, affiliation_date, radiation_date, reason = rows[0][:6]
    subjects: tuple[Subject, ...] = (Subject("siren", account_siren),)
    if nir is not None:
        # Both identifiers, so the audit trail finds this disclosure by either of them.
        subjects = (Subject("nir", nir), *subjects)
    return Status(
        siren=account_siren,
        subjects=subjects,
        regime=regime,
        category=category,
        affiliation_date=affiliation_date,
        radiation_date=radiation_date,
        radiation_reason=reason,
        history=tuple(Event(row[6], row[7], row[8]) for row in rows if row[6] is not None),
        as_of=rows[0][-1],
    )
