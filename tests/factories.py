"""Plain typed factories for test data: each adds rows to a session and flushes; tests commit."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from connectors.kit import ConnectorContext
from gateway.database import Database
from gateway.identifiers import nir_with_key, siren_with_checksum
from gateway.reads import Reader
from gateway.reference.models import (
    Account,
    AcreDecision,
    CfpPayment,
    IngestionRun,
    Periodicity,
    StatusEvent,
    TurnoverDeclaration,
)

_serial = itertools.count(1)

Connect = Callable[..., AbstractAsyncContextManager[ConnectorContext]]
"""The type of a factory of connector contexts, such as a partial of :func:`connector_context`."""


def new_siren() -> str:
    """A valid SIREN no other factory call returns in this process."""
    return siren_with_checksum(f"9{next(_serial):07d}")


def new_nir() -> str:
    """A valid, clearly synthetic NIR (born in 1999, department 75), unique in this process."""
    return nir_with_key(f"1990375{next(_serial):06d}")


def create_account(
    session: Session,
    *,
    siren: str | None = None,
    nir: str | None = None,
    category: str = "artisan",
    regime: str = "micro",
    affiliation_date: dt.date = dt.date(2020, 1, 1),
    radiation_date: dt.date | None = None,
    radiation_reason: str | None = None,
) -> Account:
    account = Account(
        siren=siren or new_siren(),
        nir=nir or new_nir(),
        category=category,
        regime=regime,
        affiliation_date=affiliation_date,
        radiation_date=radiation_date,
        radiation_reason=radiation_reason,
    )
    session.add(account)
    session.flush()
    return account


def create_status_event(
    session: Session,
    account: Account,
    event: str,
    effective_date: dt.date,
    *,
    detail: str | None = None,
    recorded_at: dt.datetime | None = None,
) -> StatusEvent:
    status_event = StatusEvent(
        account_id=account.id,
        event=event,
        effective_date=effective_date,
        detail=detail,
        recorded_at=recorded_at or dt.datetime.now(dt.UTC),
    )
    session.add(status_event)
    session.flush()
    return status_event


def period_start(period: str) -> tuple[Periodicity, dt.date]:
    """The periodicity and first day of a period written ``YYYY-MM`` or ``YYYY-Qn``."""
    year = int(period[:4])
    if period[5] == "Q":
        return Periodicity.QUARTERLY, dt.date(year, 3 * int(period[6]) - 2, 1)
    return Periodicity.MONTHLY, dt.date(year, int(period[5:7]), 1)


def create_declaration(
    session: Session,
    account: Account,
    period: str,
    *,
    sales_bic: Decimal | str = "0",
    services_bic: Decimal | str = "0",
    services_bnc: Decimal | str = "0",
    declared_at: dt.datetime | None = None,
) -> TurnoverDeclaration:
    """A turnover declaration for ``period`` (``YYYY-MM`` or ``YYYY-Qn``).

    ``declared_at`` defaults to the day after the period's first month ends.
    """
    periodicity, start = period_start(period)
    if declared_at is None:
        month_after = dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)
        declared_at = dt.datetime.combine(month_after, dt.time(9), tzinfo=dt.UTC)
    declaration = TurnoverDeclaration(
        account_id=account.id,
        period=period,
        periodicity=periodicity.value,
        period_start=start,
        sales_bic=Decimal(sales_bic),
        services_bic=Decimal(services_bic),
        services_bnc=Decimal(services_bnc),
        declared_at=declared_at,
    )
    session.add(declaration)
    session.flush()
    return declaration


def create_ingestion_run(
    session: Session, dataset: str, finished_at: dt.datetime, *, rows: int = 1
) -> IngestionRun:
    run = IngestionRun(
        dataset=dataset,
        source_name=f"{dataset}.csv",
        source_sha256="0" * 64,
        started_at=finished_at - dt.timedelta(minutes=1),
        finished_at=finished_at,
        rows_read=rows,
        rows_added=rows,
        rows_updated=0,
        rows_unchanged=0,
        rows_rejected=0,
    )
    session.add(run)
    session.flush()
    return run


def create_cfp_payment(
    session: Session,
    account: Account,
    *,
    year: int = 2024,
    base: Decimal | str = "48250.00",
    rate: Decimal | str = "0.100",
    amount_due: Decimal | str = "48.25",
    amount_paid: Decimal | str | None = None,
    payment_date: dt.date | None = dt.date(2025, 2, 25),
    fund: str = "AGEFICE",
) -> CfpPayment:
    """A CFP row; ``amount_paid`` defaults to the amount due (fully paid)."""
    payment = CfpPayment(
        account_id=account.id,
        year=year,
        base=Decimal(base),
        rate=Decimal(rate),
        amount_due=Decimal(amount_due),
        amount_paid=Decimal(amount_due if amount_paid is None else amount_paid),
        payment_date=payment_date,
        fund=fund,
    )
    session.add(payment)
    session.flush()
    return payment


def create_acre_decision(
    session: Session,
    account: Account,
    decided_at: dt.datetime,
    *,
    decision: str = "granted",
    criterion: str | None = "unemployment_benefit_are",
    exemption_start_date: dt.date | None = None,
    exemption_end_date: dt.date | None = None,
    evidence_reference: str | None = "PE-000000000001",
) -> AcreDecision:
    """A stored ACRE decision with evidence from Pôle emploi."""
    row = AcreDecision(
        account_id=account.id,
        decision=decision,
        criterion=criterion,
        exemption_start_date=exemption_start_date,
        exemption_end_date=exemption_end_date,
        evidence_source="pole-emploi/job-seekers/status/v1",
        evidence_reference=evidence_reference,
        evidence_fetched_at=decided_at,
        evidence_digest="sha256:" + "0" * 64,
        decided_at=decided_at,
    )
    session.add(row)
    session.flush()
    return row


@asynccontextmanager
async def connector_context(
    db: Database, *, today: dt.date = dt.date(2026, 7, 15), partner_kind: str = "caf"
) -> AsyncIterator[ConnectorContext]:
    """What the pipeline hands a connector operation: the database and the date."""
    yield ConnectorContext(
        reader=db.reader,
        open_session=db.session,
        today=today,
        now=dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC),
        partner_kind=partner_kind,
        services={},
    )


class _NoDatabase:
    """Stands in for a session where an operation must refuse the request before any read."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the operation used the database ({name}) before refusing")

    def __call__(self, *_args: Any) -> Any:
        raise AssertionError("the operation opened a session before refusing")


@asynccontextmanager
async def offline_context(
    *, today: dt.date = dt.date(2026, 7, 15), partner_kind: str = "caf"
) -> AsyncIterator[ConnectorContext]:
    """A connector context without a database: for checks that must happen before any read."""
    yield ConnectorContext(
        reader=cast(Reader, _NoDatabase()),
        open_session=cast(Callable[[], AbstractAsyncContextManager[AsyncSession]], _NoDatabase()),
        today=today,
        now=dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC),
        partner_kind=partner_kind,
        services={},
    )


class ManualClock:
    """A clock a test moves by hand: ``clock.now = 61.0``; call it to read the time."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
