"""Reference store tables: accounts and their status history, turnover, CFP, ACRE decisions.

Values the upstream systems send are kept as history: a status change is a new event, a
rectified turnover declaration is a new row with a later ``declared_at``. Only the account's
current status columns are derived, from its events, to keep lookups to one row.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.database import Base, utcnow

Money = Numeric(14, 2)


class Category(enum.StrEnum):
    ARTISAN = "artisan"
    COMMERCANT = "commercant"
    LIBERAL = "liberal"


class Regime(enum.StrEnum):
    MICRO = "micro"
    CLASSIQUE = "classique"


class StatusEventKind(enum.StrEnum):
    AFFILIATION = "affiliation"
    RADIATION = "radiation"
    REGIME_CHANGE = "regime_change"


class Periodicity(enum.StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class AcreDecisionKind(enum.StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"
    PENDING = "pending"


def _in(column: str, values: type[enum.StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


class Account(Base):
    """A self-employed person's account; ``regime`` and radiation columns follow the events."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint(_in("category", Category), name="category"),
        CheckConstraint(_in("regime", Regime), name="regime"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nir: Mapped[str] = mapped_column(String(15), unique=True)
    siren: Mapped[str] = mapped_column(String(9), unique=True)
    category: Mapped[str] = mapped_column(String(16))
    regime: Mapped[str] = mapped_column(String(16))
    affiliation_date: Mapped[dt.date] = mapped_column(Date)
    radiation_date: Mapped[dt.date | None] = mapped_column(Date)
    radiation_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StatusEvent(Base):
    """One affiliation, radiation or regime change; the id orders the change feed."""

    __tablename__ = "status_event"
    __table_args__ = (
        CheckConstraint(_in("event", StatusEventKind), name="event"),
        UniqueConstraint("account_id", "event", "effective_date"),
        Index("ix_status_event_tx_id_id", "tx_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    detail: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The inserting transaction's id on PostgreSQL (set by the database: migration 0005 holds
    # the real default), 0 on SQLite; the status feed orders by (tx_id, id).
    tx_id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class TurnoverDeclaration(Base):
    """A declared turnover; a later ``declared_at`` for the same period is a rectification."""

    __tablename__ = "turnover_declaration"
    __table_args__ = (
        CheckConstraint(_in("periodicity", Periodicity), name="periodicity"),
        CheckConstraint(
            "sales_bic >= 0 AND services_bic >= 0 AND services_bnc >= 0", name="amounts"
        ),
        UniqueConstraint("account_id", "period", "declared_at"),
        Index("ix_turnover_declaration_account_period", "account_id", "period_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    period: Mapped[str] = mapped_column(String(7), doc="YYYY-MM or YYYY-Qn")
    periodicity: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[dt.date] = mapped_column(Date)
    sales_bic: Mapped[Decimal] = mapped_column(Money)
    services_bic: Mapped[Decimal] = mapped_column(Money)
    services_bnc: Mapped[Decimal] = mapped_column(Money)
    declared_at: Mapped[dt.datetime] = mapped_column()
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CfpPayment(Base):
    """The training contribution (CFP) of one account for one year."""

    __tablename__ = "cfp_payment"
    __table_args__ = (
        UniqueConstraint("account_id", "year"),
        CheckConstraint("amount_due >= 0 AND amount_paid >= 0 AND base >= 0", name="amounts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    year: Mapped[int] = mapped_column(Integer)
    base: Mapped[Decimal] = mapped_column(Money)
    rate: Mapped[Decimal] = mapped_column(Numeric(6, 3), doc="percent, e.g. 0.300 for 0.3 %")
    amount_due: Mapped[Decimal] = mapped_column(Money)
    amount_paid: Mapped[Decimal] = mapped_column(Money)
    payment_date: Mapped[dt.date | None] = mapped_column(Date)
    fund: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AcreDecision(Base):
    """An ACRE exemption decision and the evidence it rests on (filled by the ACRE connector)."""

    __tablename__ = "acre_decision"
    __table_args__ = (CheckConstraint(_in("decision", AcreDecisionKind), name="decision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    criterion: Mapped[str | None] = mapped_column(String(64))
    exemption_start_date: Mapped[dt.date | None] = mapped_column(Date)
    exemption_end_date: Mapped[dt.date | None] = mapped_column(Date)
    evidence_source: Mapped[str | None] = mapped_column(String(200))
    evidence_reference: Mapped[str | None] = mapped_column(String(200))
    evidence_fetched_at: Mapped[dt.datetime | None] = mapped_column()
    evidence_digest: Mapped[str | None] = mapped_column(String(71), doc="sha256:<hex>")
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IngestionRun(Base):
    """One load of a dataset: what ``as_of`` in every answer is read from."""

    __tablename__ = "ingestion_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset: Mapped[str] = mapped_column(String(32), index=True)
    source_name: Mapped[str] = mapped_column(String(255))
    source_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column()
    finished_at: Mapped[dt.datetime] = mapped_column()
    rows_read: Mapped[int] = mapped_column(Integer)
    rows_added: Mapped[int] = mapped_column(Integer)
    rows_updated: Mapped[int] = mapped_column(Integer)
    rows_unchanged: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
