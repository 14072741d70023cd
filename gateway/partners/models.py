"""The partner registry: organisations, their OAuth clients and their habilitations.

A habilitation is the legal right of one partner to one scope: the purposes it may state, the
legal basis it rests on (and whether that basis is the person's consent), the dates it holds.
Nothing is deleted: a disabled client or a revoked habilitation keeps its row, so the audit
trail can always say under which right a past disclosure was made.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.database import Base, utcnow


class PartnerKind(enum.StrEnum):
    CAF = "caf"
    POLE_EMPLOI = "pole-emploi"
    CNAM = "cnam"
    TRAINING_FUND = "training-fund"


class Scope(enum.StrEnum):
    """What an access token may be used for: ``dataset:action``."""

    TURNOVER_READ = "turnover:read"
    STATUS_READ = "status:read"
    STATUS_FEED = "status:feed"
    CFP_READ = "cfp:read"
    ACRE_READ = "acre:read"
    CONSENT_WRITE = "consent:write"


class ClientAuthMethod(enum.StrEnum):
    """How a client proves who it is at the token endpoint (RFC 7591 names)."""

    PRIVATE_KEY_JWT = "private_key_jwt"
    CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105  (a method name)


def _in(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(member.value) for member in values)})"


class Partner(Base):
    __tablename__ = "partner"
    __table_args__ = (CheckConstraint(_in("kind", PartnerKind), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OAuthClient(Base):
    """A machine of a partner. Exactly one credential: a public JWK set or a hashed secret."""

    __tablename__ = "oauth_client"
    __table_args__ = (
        CheckConstraint(_in("auth_method", ClientAuthMethod), name="auth_method"),
        CheckConstraint(
            "(auth_method = 'private_key_jwt' AND jwks IS NOT NULL AND secret_hash IS NULL)"
            " OR (auth_method = 'client_secret_basic' AND secret_hash IS NOT NULL"
            " AND jwks IS NULL)",
            name="one_credential",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), index=True)
    auth_method: Mapped[str] = mapped_column(String(32))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    credential_expires_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column()

    partner: Mapped[Partner] = relationship(lazy="joined", innerjoin=True)


class Habilitation(Base):
    """One partner's right to one scope, for listed purposes, between two dates (inclusive)."""

    __tablename__ = "habilitation"
    __table_args__ = (
        CheckConstraint(
            "valid_until_date IS NULL OR valid_until_date >= valid_from_date", name="dates"
        ),
        CheckConstraint(
            "rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0", name="rate_limit"
        ),
        Index("ix_habilitation_partner_scope", "partner_id", "scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"))
    scope: Mapped[str] = mapped_column(String(32))
    purposes: Mapped[list[str]] = mapped_column(JSON)
    legal_basis: Mapped[str] = mapped_column(Text)
    consent_required: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_from_date: Mapped[dt.date] = mapped_column(Date)
    valid_until_date: Mapped[dt.date | None] = mapped_column(Date)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    released_fields: Mapped[list[str] | None] = mapped_column(
        JSON, doc="Releasable response fields covered (dotted paths); NULL: all of them."
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()

    partner: Mapped[Partner] = relationship(lazy="joined", innerjoin=True)

    def in_force_on(self, day: dt.date) -> bool:
        return (
            self.revoked_at is None
            and self.valid_from_date <= day
            and (self.valid_until_date is None or day <= self.valid_until_date)
        )
