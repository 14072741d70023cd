"""Factories for the audit trail's tests, and the attacker's direct access to the tables."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select, text, update
from typer.testing import Result

from gateway.audit import (
    AuditEntry,
    AuditSubject,
    Es256CheckpointSigner,
    run_sealer_once,
)
from gateway.audit.chain import RECORD_COLUMNS, SUBJECT_COLUMNS, checkpoint_payload, link
from gateway.audit.models import AuditCheckpoint, AuditPending, AuditRecord, AuditSubjectEntry
from gateway.audit.roles import app_role_grants
from gateway.audit.writer import record_row
from gateway.database import Database, utcnow
from gateway.identifiers import nir_with_key, siren_with_checksum

Cli = Callable[..., Result]  # the ``cli`` fixture: ``cli("verify", "--json")``

NIR = nir_with_key("1850578006084")
OTHER_NIR = nir_with_key("2920375120045")
SIREN = siren_with_checksum("73282932")


def make_entry(index: int = 0, **overrides: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "request_id": f"req-{index:06d}",
        "operation": "data.disclosed",
        "outcome": "granted",
        "http_status": 200,
        "client_id": "caf-instruction",
        "partner_id": 7,
        "connector": "turnover",
        "connector_version": 1,
        "purpose": "rsa.instruction",
        "recipient": "CAF 75 service instruction",
        "legal_basis": "code-action-sociale-L262-40",
        "case_reference": f"dossier-{index}",
        "response_sha256": hashlib.sha256(str(index).encode()).hexdigest(),
        "latency_us": 1500 + index,
    }
    values.update(overrides)
    return AuditEntry(**values)


def subject_of(index: int, kind: str = "nir") -> AuditSubject:
    """A made-up pseudonym (tests of the chain do not need real HMACs)."""
    return AuditSubject(kind, hashlib.sha256(f"{kind}{index}".encode()).hexdigest(), "pk-test")  # type: ignore[arg-type]


def insert_entry(conn: Connection, entry: AuditEntry, *, record_id: int | None = None) -> int:
    """What the writer does for one entry, on a caller-controlled connection and transaction."""
    values = record_row(entry)
    if record_id is not None:
        values["id"] = record_id
    new_id = conn.execute(insert(AuditRecord).returning(AuditRecord.id), [values]).scalar_one()
    for subject in entry.subjects:
        conn.execute(
            insert(AuditSubjectEntry).values(
                record_id=new_id,
                subject_kind=subject.kind,
                pseudonym=subject.pseudonym,
                key_id=subject.key_id,
                occurred_at=entry.occurred_at,
            )
        )
    conn.execute(insert(AuditPending).values(record_id=new_id))
    return int(new_id)


def write_sealed(
    db: Database,
    signer: Es256CheckpointSigner,
    count: int,
    *,
    batches: int = 1,
    start: int = 0,
    occurred_at: dt.datetime | None = None,
) -> list[int]:
    """``count`` records with a subject each, sealed in ``batches`` checkpoints."""
    ids: list[int] = []
    per_batch = -(-count // batches)
    for first in range(start, start + count, per_batch):
        with db.sync_engine.begin() as conn:
            for index in range(first, min(first + per_batch, start + count)):
                entry = make_entry(
                    index,
                    subjects=[subject_of(index)],
                    occurred_at=occurred_at or utcnow(),
                )
                ids.append(insert_entry(conn, entry))
        run_sealer_once(db.sync_engine, signer)
    return ids


@contextmanager
def as_attacker(db: Database, *tables: str) -> Iterator[Connection]:
    """A connection with the append-only triggers out of the way, as a superuser could.

    PostgreSQL: ``session_replication_role = replica`` skips ordinary triggers (and foreign
    keys) for this session. SQLite: the tables' triggers are dropped.
    """
    with db.sync_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            for table in tables:
                names = conn.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                    {"t": table},
                ).scalars()
                for name in list(names):
                    conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        yield conn


@contextmanager
def as_app(db: Database, request: pytest.FixtureRequest) -> Iterator[Connection]:
    """The gateway's own least-privileged role, triggers untouched (SQLite: a plain connection).

    What a leaked application password gives: INSERT on the trail, no UPDATE, no trigger
    bypassed.
    """
    role: str | None = None
    if db.sync_engine.dialect.name == "postgresql":
        role = str(request.getfixturevalue("app_role"))
        with db.sync_engine.begin() as conn:
            for statement in app_role_grants(role):
                conn.execute(text(statement))
    with db.sync_engine.begin() as conn:
        if role is not None:
            conn.execute(text(f'SET LOCAL ROLE "{role}"'))
        yield conn


@contextmanager
def seal_position_check_lifted(conn: Connection) -> Iterator[None]:
    """Let an attacker's connection write a seal at position 0 or below, past the CHECK.

    PostgreSQL: the owner drops the constraint and puts it back without checking old rows.
    SQLite: the connection ignores CHECK constraints for a while.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE audit_seal DROP CONSTRAINT ck_audit_seal_position")
        yield
        conn.exec_driver_sql(
            "ALTER TABLE audit_seal ADD CONSTRAINT ck_audit_seal_position "
            "CHECK (position > 0) NOT VALID"
        )
        return
    conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA ignore_check_constraints = OFF")


def record_values(conn: Connection, record_id: int) -> tuple[Any, ...]:
    columns = ", ".join(RECORD_COLUMNS)
    row = conn.execute(
        text(f"SELECT {columns} FROM audit_record WHERE id = :id"),  # noqa: S608
        {"id": record_id},
    ).one()
    return tuple(row)


def subject_values(conn: Connection, record_id: int) -> list[tuple[Any, ...]]:
    columns = ", ".join(SUBJECT_COLUMNS)
    rows = conn.execute(
        text(f"SELECT {columns} FROM audit_subject WHERE record_id = :id ORDER BY id"),  # noqa: S608
        {"id": record_id},
    ).all()
    return [tuple(row) for row in rows]


def relink(
    conn: Connection, previous: str, position: int, record: Sequence[Any], subjects: Any
) -> str:
    """The link an attacker who knows the public algorithm computes for a forged record."""
    occurred = record[1]
    if isinstance(occurred, str):
        record = (record[0], dt.datetime.fromisoformat(occurred), *record[2:])
    fixed_subjects = [
        (*s[:5], dt.datetime.fromisoformat(s[5]) if isinstance(s[5], str) else s[5])
        for s in subjects
    ]
    return link(previous, position, record, fixed_subjects)


Sign = Callable[[bytes], tuple[str, str]]  # payload -> (kid, compact JWS)


def rewrite_and_resign(
    conn: Connection,
    from_position: int,
    to_position: int,
    sign: Sign,
    *,
    dated: dt.datetime | None = None,
) -> None:
    """What a forger holding some signing key does: alter the record at ``from_position``,
    relink every seal up to ``to_position`` and re-sign the checkpoints among them (dated
    ``dated`` if given, else as they were). Needs the triggers out of the way."""
    record_id = conn.execute(
        text("SELECT record_id FROM audit_seal WHERE position = :p"), {"p": from_position}
    ).scalar_one()
    conn.execute(
        text("UPDATE audit_record SET partner_id = 666, purpose = 'x' WHERE id = :id"),
        {"id": record_id},
    )
    previous = conn.execute(
        text("SELECT chain_hash FROM audit_seal WHERE position = :p"), {"p": from_position - 1}
    ).scalar_one()
    for position in range(from_position, to_position + 1):
        sealed = conn.execute(
            text("SELECT record_id FROM audit_seal WHERE position = :p"), {"p": position}
        ).scalar_one()
        previous = relink(
            conn, previous, position, record_values(conn, sealed), subject_values(conn, sealed)
        )
        conn.execute(
            text("UPDATE audit_seal SET chain_hash = :h WHERE position = :p"),
            {"h": previous, "p": position},
        )
        checkpoint = conn.execute(
            select(AuditCheckpoint.record_count, AuditCheckpoint.created_at).where(
                AuditCheckpoint.position == position
            )
        ).first()
        if checkpoint is not None:
            created_at = dated or checkpoint.created_at
            kid, signature = sign(
                checkpoint_payload(position, previous, checkpoint.record_count, created_at)
            )
            conn.execute(
                update(AuditCheckpoint)
                .where(AuditCheckpoint.position == position)
                .values(head_hash=previous, created_at=created_at, key_id=kid, signature=signature)
            )
