"""State the authorisation server shares between processes: used assertions, revoked tokens,
rate-limit counters. Each row carries its own end of life and is purged lazily after it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.database import Base, utcnow


class ClientAssertionJti(Base):
    """A ``jti`` of a client assertion already accepted: RFC 7523 replay protection."""

    __tablename__ = "client_assertion_jti"
    __table_args__ = (PrimaryKeyConstraint("client_id", "jti"),)

    client_id: Mapped[str] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class TokenRevocation(Base):
    """An access token revoked before its expiry (RFC 7009), by its ``jti``."""

    __tablename__ = "token_revocation"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RateLimitCounter(Base):
    """Requests of one bucket (client and scope) in one fixed window."""

    __tablename__ = "rate_limit_counter"
    __table_args__ = (PrimaryKeyConstraint("bucket", "window_start_epoch"),)

    bucket: Mapped[str] = mapped_column(String(200))
    window_start_epoch: Mapped[int] = mapped_column(Integer, index=True)
    hits: Mapped[int] = mapped_column(Integer)
