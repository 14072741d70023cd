"""Factories for the audit trail's tests, and the attacker's direct access to the tables."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, insert, text

from gateway.audit import (
    AuditEntry,
    AuditSubject,
    Es256CheckpointSigner,
    run_sealer_once,
)
from gateway.audit.chain import RECORD_COLUMNS, SUBJECT_COLUMNS, link
from gateway.audit.models import AuditPending, AuditRecord, AuditSubjectEntry
from gateway.audit.writer import record_row
from gateway.database import Database, utcnow
from gateway.identifiers import nir_with_key, siren_with_checksum

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
