"""Audit trail tables: records, their subjects, the seal chain, checkpoints, purges, keys.

Why the chain lives in its own table (``audit_seal``) rather than in columns of
``audit_record`` that the sealer fills in later: a record row is then never updated by anyone,
so the trigger on it refuses every UPDATE without exception, and PostgreSQL writes no second
version of a wide, heavily indexed row for each sealed record. The sealer only appends narrow
rows. Which records still wait for a seal is kept in ``audit_pending``, a work queue the writer
fills in the same transaction as the record: the sealer reads it in record id order, so a
record whose transaction commits after records with larger ids (ids are drawn before commit on
PostgreSQL) is simply sealed in the next batch instead of being skipped, and finding the work
costs a read of the queue, not a scan of the trail. The queue is not evidence: a row removed
from it shows up in ``verify`` as a record neither sealed nor queued.

Append-only is enforced by triggers (see migration 0003) and, on PostgreSQL, by granting the
application role only INSERT and SELECT (``gateway audit grant-app-role``). The only DELETE the
triggers let through is the retention purge of rows sealed at or before the anchor of a
recorded ``audit_purge``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.audit.schemas import (
    CASE_REFERENCE_LENGTH,
    CLIENT_ID_LENGTH,
    KEY_ID_LENGTH,
    LEGAL_BASIS_LENGTH,
    NAME_LENGTH,
    OUTCOMES,
    RECIPIENT_LENGTH,
    REQUEST_ID_LENGTH,
    SHA256_HEX_LENGTH,
    SUBJECT_KINDS,
)
from gateway.database import Base

# SQLite only auto-numbers a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _in(column: str, values: frozenset[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in sorted(values))})"


class AuditRecord(Base):
    """One request that reached the pipeline, granted or refused. Never updated."""

    __tablename__ = "audit_record"
    __table_args__ = (
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
        Index("ix_audit_record_occurred_at", "occurred_at"),
        # Monotonic ids on SQLite too, even once the newest rows have been purged.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    occurred_at: Mapped[dt.datetime]
    request_id: Mapped[str] = mapped_column(String(REQUEST_ID_LENGTH))
    client_id: Mapped[str | None] = mapped_column(String(CLIENT_ID_LENGTH))
    partner_id: Mapped[int | None] = mapped_column(Integer)
    connector: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    connector_version: Mapped[int | None] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(NAME_LENGTH))
    purpose: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    recipient: Mapped[str | None] = mapped_column(String(RECIPIENT_LENGTH))
    legal_basis: Mapped[str | None] = mapped_column(String(LEGAL_BASIS_LENGTH))
    consent_id: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    case_reference: Mapped[str | None] = mapped_column(String(CASE_REFERENCE_LENGTH))
    outcome: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    http_status: Mapped[int] = mapped_column(SmallInteger)
    response_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX_LENGTH))
    latency_us: Mapped[int | None] = mapped_column(Integer)


# The console pages a partner's records newest first.
Index(
    "ix_audit_record_partner_id_occurred_at",
    AuditRecord.partner_id,
    AuditRecord.occurred_at.desc(),
)


class AuditSubjectEntry(Base):
    """A person whose data a request carried, pseudonymised; covered by its record's seal."""

    __tablename__ = "audit_subject"
    __table_args__ = (
        CheckConstraint(_in("subject_kind", SUBJECT_KINDS), name="subject_kind"),
        # ``occurred_at`` is copied from the record so a person's history is one index range.
        Index("ix_audit_subject_pseudonym_occurred_at", "pseudonym", "occurred_at"),
        Index("ix_audit_subject_record_id", "record_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    record_id: Mapped[int] = mapped_column(Id, ForeignKey("audit_record.id"))
    subject_kind: Mapped[str] = mapped_column(String(8))
    pseudonym: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH))
    occurred_at: Mapped[dt.datetime]


class AuditPending(Base):
    """Records committed but not sealed yet: the sealer's work queue, emptied as it seals."""

    __tablename__ = "audit_pending"

    record_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)


class AuditSeal(Base):
    """A record's place in the hash chain, assigned by the sealer. Never updated.

    No foreign key to ``audit_record``: the purge removes records before their seals (the
    triggers check a record's seal to allow its deletion), and a seal whose record vanished is
    exactly what ``verify`` reports.
    """

    __tablename__ = "audit_seal"
    # Positions start at 1; migration 0008 also refuses any seal at or below the last
    # checkpoint, which ``verify`` would never walk.
    __table_args__ = (CheckConstraint("position > 0", name="position"),)

    position: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    record_id: Mapped[int] = mapped_column(Id, unique=True)
    chain_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))


class AuditCheckpoint(Base):
    """The signed chain head after one sealing batch; every sealed record is under one."""

    __tablename__ = "audit_checkpoint"

    position: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    record_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    key_id: Mapped[str] = mapped_column(String(128))
    signature: Mapped[str] = mapped_column(Text)


class AuditPurge(Base):
    """A signed retention purge: everything sealed up to ``anchor_position`` was deleted."""

    __tablename__ = "audit_purge"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    purged_at: Mapped[dt.datetime]
    cutoff_at: Mapped[dt.datetime]
    anchor_position: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    records_deleted: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(128))
    signature: Mapped[str] = mapped_column(Text)


class PseudonymKey(Base):
    """An HMAC key for subject pseudonyms; the secret is encrypted with the master key."""

    __tablename__ = "audit_pseudonym_key"
    __table_args__ = (
        # At most one active key: every process pseudonymises new records with the same one.
        Index(
            "uq_audit_pseudonym_key_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), primary_key=True)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    active: Mapped[bool] = mapped_column(Boolean)
