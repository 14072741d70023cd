"""Signing keys of the gateway, one row per key, private halves encrypted at rest."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.database import Base, utcnow


class KeyUse(enum.StrEnum):
    """What a key signs; each use has its own current key so one leak does not sign the rest."""

    TOKEN = "token"  # noqa: S105  (a key use, not a secret)
    AUDIT = "audit"
    ATTESTATION = "attestation"
    CONSENT = "consent"


class SigningKey(Base):
    """A key pair; ``retired_at`` is set when a newer key of the same use replaces it.

    ``last_signed_expiry_at`` is an upper bound of the expiry of anything the key signed,
    written before the signature is handed out: a retired token key stays published until
    then, so every token it signed can still be verified.
    """

    __tablename__ = "signing_key"
    __table_args__ = (
        CheckConstraint("use IN ('token', 'audit', 'attestation', 'consent')", name="use"),
        # At most one current key per use, even when two processes create one at once.
        Index(
            "uq_signing_key_current_use",
            "use",
            unique=True,
            sqlite_where=text("retired_at IS NULL"),
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    use: Mapped[str] = mapped_column(String(16))
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column()
    last_signed_expiry_at: Mapped[dt.datetime | None] = mapped_column()
