"""The sealer: chains committed records into the hash chain and signs a checkpoint per batch.

One sealer at a time across every gateway process: on PostgreSQL the batch's transaction takes
``pg_try_advisory_xact_lock`` and a process that does not get it skips this round; SQLite has
one process and serialises writers, and the batch opens with ``BEGIN IMMEDIATE`` so that the
sealer holds the write lock from its first read (a deferred transaction could read the head and
then fail to upgrade to a write). The request path never takes this lock: it only inserts.

A batch takes up to ``batch_size`` records from ``audit_pending`` in record id order, assigns
them the next chain positions, appends their ``audit_seal`` rows, signs a checkpoint of the new
head and empties their queue entries, all in one transaction: every sealed record is under a
signed checkpoint, and a record that committed late (a smaller id than records already sealed)
is still in the queue and gets the next position.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, delete, insert, select, text, type_coerce
from sqlalchemy.types import NullType

from gateway.audit.chain import (
    GENESIS_HASH,
    RECORD_COLUMNS,
    SUBJECT_COLUMNS,
    checkpoint_payload,
    link,
)
from gateway.audit.models import (
    AuditCheckpoint,
    AuditPending,
    AuditRecord,
    AuditSeal,
    AuditSubjectEntry,
)
from gateway.audit.signing import CheckpointSigner
from gateway.database import utcnow

log = structlog.get_logger(__name__)

# Any constant shared by every process; the bytes spell "auditsea".
SEALER_LOCK_KEY = 0x6175646974736561
DEFAULT_BATCH_SIZE = 5000

# Values as the driver returns them, without the model's type conversions: the chain hashes
# them directly, and verify streams every record through here.
RECORD_SELECT = [
    type_coerce(AuditRecord.__table__.c[name], NullType()).label(name) for name in RECORD_COLUMNS
]
SUBJECT_SELECT = [
    type_coerce(AuditSubjectEntry.__table__.c[name], NullType()).label(name)
    for name in SUBJECT_COLUMNS
]


@dataclass(frozen=True)
class SealResult:
    sealed: int
    checkpoints: int
    head_position: int | None
    busy: bool = False  # another process held the sealing lock


@contextmanager
def sealing_transaction(engine: Engine, *, wait: bool = False) -> Iterator[Connection | None]:
    """A transaction holding the sealing lock, or ``None`` when another process holds it."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # Autocommit at the driver level, so that our own BEGIN IMMEDIATE is the transaction.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # A failed statement may already have ended the transaction.
                if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                    conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        return
    with engine.begin() as conn:
        # A batch reads at most ``batch_size`` queue entries by index; the queue's statistics
        # lag behind its churn, and the planner would otherwise start parallel workers (two
        # new processes) for what it takes for a large table, twice a second.
        conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        if wait:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEALER_LOCK_KEY})
        elif not conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SEALER_LOCK_KEY}
        ).scalar():
            yield None
            return
        yield conn


def chain_head(conn: Connection) -> tuple[int, str]:
    """(position, hash) of the last link: the latest checkpoint, which every batch writes."""
    row = conn.execute(
        select(AuditCheckpoint.position, AuditCheckpoint.head_hash)
        .order_by(AuditCheckpoint.position.desc())
        .limit(1)
    ).first()
    return (0, GENESIS_HASH) if row is None else (row[0], row[1])


def subjects_by_record(rows: Sequence[Any]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    record_id_index = SUBJECT_COLUMNS.index("record_id")
    for row in rows:
        grouped[row[record_id_index]].append(row)
    return grouped


def _seal_batch(conn: Connection, signer: CheckpointSigner, key_id: str, batch_size: int) -> int:
    position, previous = chain_head(conn)
    rows = conn.execute(
        select(AuditPending.record_id, AuditSeal.position, *RECORD_SELECT)
        .select_from(AuditPending)
        .outerjoin(AuditRecord, AuditRecord.id == AuditPending.record_id)
        .outerjoin(AuditSeal, AuditSeal.record_id == AuditPending.record_id)
        .order_by(AuditPending.record_id)
        .limit(batch_size)
    ).all()
    # Queue entries without a record, or for a record already sealed, can only come from
    # outside the gateway; sealing them would fail forever, so they are dropped and logged
    # (verify reports what is actually wrong with the trail).
    stray = [row[0] for row in rows if row[2] is None or row[1] is not None]
    if stray:
        log.warning("audit_pending_stray_entries", count=len(stray))
        conn.execute(delete(AuditPending).where(AuditPending.record_id.in_(stray)))
    records = [tuple(row[2:]) for row in rows if row[2] is not None and row[1] is None]
    if not records:
        return 0
    ids = {record[0] for record in records}
    subject_rows = conn.execute(
        select(*SUBJECT_SELECT)
        .where(AuditSubjectEntry.record_id.between(min(ids), max(ids)))
        .order_by(AuditSubjectEntry.id)
    ).all()
    subjects = subjects_by_record([row for row in subject_rows if row[1] in ids])
    first_position = position + 1
    seals = []
    for record in records:
        position += 1
        previous = link(previous, position, record, subjects.get(record[0], ()))
        seals.append({"position": position, "record_id": record[0], "chain_hash": previous})
    conn.execute(insert(AuditSeal), seals)
    created_at = utcnow()
    payload = checkpoint_payload(position, previous, len(records), created_at)
    conn.execute(
        insert(AuditCheckpoint).values(
            position=position,
            head_hash=previous,
            record_count=len(records),
            created_at=created_at,
            key_id=key_id,
            signature=signer.sign(payload),
        )
    )
    conn.execute(
        delete(AuditPending).where(
            AuditPending.record_id.in_(
                select(AuditSeal.record_id).where(AuditSeal.position >= first_position)
            )
        )
    )
    return len(records)


def run_sealer_once(
    engine: Engine, signer: CheckpointSigner, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> SealResult:
    """Seal every record committed so far, one checkpoint per batch of ``batch_size``."""
    sealed = checkpoints = 0
    head: int | None = None
    while True:
        with engine.connect() as conn:
            # A plain read first: an idle sealer must not take SQLite's write lock twice a second.
            if conn.execute(select(AuditPending.record_id).limit(1)).first() is None:
                break
        # Read (or created) before the write lock is taken: SQLite has one writer.
        key_id = signer.key_id
        with sealing_transaction(engine) as locked:
            if locked is None:
                return SealResult(sealed, checkpoints, head, busy=True)
            count = _seal_batch(locked, signer, key_id, batch_size)
            head = chain_head(locked)[0]
        if count:
            sealed += count
            checkpoints += 1
            log.debug("audit_sealed", records=count, head_position=head)
        if count < batch_size:
            break
    return SealResult(sealed, checkpoints, head)


def seal_until_stopped(
    engine: Engine,
    signer: CheckpointSigner,
    interval: float,
    stop: threading.Event,
    *,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Seal every ``interval`` seconds until ``stop`` is set or ``keep_going()`` is false,
    then once more, so that a clean stop leaves nothing unsealed."""
    while True:
        stopping = stop.is_set() or not keep_going()
        try:
            run_sealer_once(engine, signer)
        except Exception as exc:
            # Unsealed records stay queued and are sealed by a later run.
            log.error("audit_seal_failed", error_type=type(exc).__name__)
        if stopping:
            return
        stop.wait(interval)
