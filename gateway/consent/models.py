"""Consent tables: a grant written once, and an append-only ledger of what happened to it.

Nothing is updated: revoking appends an event, and the current state (active, revoked,
expired) is derived from the grant's expiry and its events. The person is known here only by
keyed pseudonyms, one per identifier the gateway could resolve (NIR and SIREN), so a consent
given by NIR covers a lookup by SIREN of the same person.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.database import Base, utcnow


class Consent(Base):
    __tablename__ = "consent"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(255), doc="space-separated")
    purpose: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    receipt_jws: Mapped[str] = mapped_column(Text)


class ConsentSubject(Base):
    """A pseudonym under which the consent's person is found."""

    __tablename__ = "consent_subject"
    __table_args__ = (Index("ix_consent_subject_pseudonym", "pseudonym"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consent.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    pseudonym: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))


class ConsentEvent(Base):
    """The ledger: ``granted`` when the consent is recorded, ``revoked`` when withdrawn."""

    __tablename__ = "consent_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consent.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    client_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
