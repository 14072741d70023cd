"""Console tables: staff accounts, their sessions, saved searches and verification runs.

Sessions are kept in the database, not in a signed cookie, so that logout, timeout and the
disabling of an account take effect at once in every gateway process. The cookie carries a
random token; only its SHA-256 is stored, so a copy of the table opens no session.

A saved search (``staff_search``) is what a results page names in its URL instead of its
criteria: a person's identifier typed by staff is turned into pseudonyms when the search is
submitted, and only those pseudonyms are kept, under an opaque handle bound to the staff member.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.database import Base, utcnow

NAME_LENGTH = 64
TOKEN_HASH_LENGTH = 64
HANDLE_LENGTH = 32


class StaffRole(enum.StrEnum):
    """``auditor`` reads the audit trail and consents; ``admin`` also the partner registry."""

    AUDITOR = "auditor"
    ADMIN = "admin"


class StaffAccount(Base):
    __tablename__ = "staff_account"
    __table_args__ = (
        CheckConstraint(
            "role IN (" + ", ".join(repr(role.value) for role in StaffRole) + ")", name="role"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255), doc="argon2id, PHC string format")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column()
    # Wrong passwords since the last login, from any address: for ops (logs, `staff list`).
    # It locks nothing: logins are throttled per name and address (console.throttle).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    # No longer set: an account lock let anyone keep its owner out. Kept (and cleared at each
    # login) because removing the column takes a migration.
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    last_login_at: Mapped[dt.datetime | None] = mapped_column()


class StaffSession(Base):
    __tablename__ = "staff_session"

    id: Mapped[str] = mapped_column(
        String(TOKEN_HASH_LENGTH), primary_key=True, doc="SHA-256 (hex) of the cookie's token"
    )
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column()


class StaffSearch(Base):
    __tablename__ = "staff_search"

    id: Mapped[str] = mapped_column(String(HANDLE_LENGTH), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), doc="audit or subject")
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, doc="never an identifier in clear")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class ConsoleVerification(Base):
    """One verification of the audit trail run from the console, and what it found."""

    __tablename__ = "console_verification"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime]
    staff_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    ok: Mapped[bool] = mapped_column(Boolean)
    records: Mapped[int] = mapped_column(BigInteger)
    checkpoints: Mapped[int] = mapped_column(BigInteger)
    pending: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    problem_code: Mapped[str | None] = mapped_column(String(64))
    problem_message: Mapped[str | None] = mapped_column(Text)
    problem_record_id: Mapped[int | None] = mapped_column(BigInteger)
