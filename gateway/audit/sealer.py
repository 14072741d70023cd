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

The sealer builds only on a head it can vouch for (``chain_head``): the last seal after the
purge anchor, with a checkpoint at that very position holding that very hash, whose signature
verifies with a trusted key. The gateway's role may insert seals and checkpoints, so a row
planted ahead of the chain would otherwise have every later record chained onto a forged
hash. Anything else and it seals nothing, logs ``audit_seal_refused`` at error level and
tries again next round (fail closed: records stay queued, ``verify`` names the problem).
Each checkpoint's position and head hash is logged at info level (``audit_sealed``): a witness
kept outside the database, which ``gateway audit verify --anchor POSITION:HASH`` checks, so a
chain cut back to an earlier checkpoint (or an old backup put back) cannot pass for intact.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    FromClause,
    delete,
    func,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.sql.elements import Label
from sqlalchemy.types import NullType

from gateway.audit.chain import (
    GENESIS_HASH,
    RECORD_COLUMNS,
    SUBJECT_COLUMNS,
    checkpoint_payload,
    link,
)
from gateway.audit.errors import CheckpointSignatureError
from gateway.audit.models import (
    AuditCheckpoint,
    AuditPending,
    AuditPurge,
    AuditRecord,
    AuditSeal,
    AuditSubjectEntry,
)
from gateway.audit.signing import (
    CheckpointSigner,
    CheckpointVerifier,
    check_checkpoint,
    signature_key_id,
)
from gateway.database import utcnow

log = structlog.get_logger(__name__)

# Any constant shared by every process; the bytes spell "auditsea".
SEALER_LOCK_KEY = 0x6175646974736561
DEFAULT_BATCH_SIZE = 5000

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def raw_columns(table: FromClause, names: Sequence[str]) -> list[Label[Any]]:
    """Columns read as the driver returns them, without the model's type conversions: the
    chain hashes them directly, verify streams every record through here, and a malformed
    value (SQLite keeps any value anywhere) reaches the checks instead of raising in a
    result processor."""
    return [type_coerce(table.c[name], NullType()).label(name) for name in names]


RECORD_SELECT = raw_columns(AuditRecord.__table__, RECORD_COLUMNS)
SUBJECT_SELECT = raw_columns(AuditSubjectEntry.__table__, SUBJECT_COLUMNS)
CHECKPOINT_SELECT = raw_columns(
    AuditCheckpoint.__table__,
    ("position", "head_hash", "record_count", "created_at", "key_id", "signature"),
)


@dataclass(frozen=True)
class SealResult:
    sealed: int
    checkpoints: int
    head_position: int | None
    busy: bool = False  # another process held the sealing lock
    refused: str | None = None  # why the head could not be vouched for; nothing was sealed


class SealingRefusedError(Exception):
    """The chain's head cannot be vouched for: sealing onto it would chain onto a forgery."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class ChainHead:
    position: int
    chain_hash: str
    anchor: int  # the last purge's anchor position (0: none)
    created_us: int | None  # the head checkpoint's date, epoch microseconds


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


def chain_head(conn: Connection, verifier: CheckpointVerifier) -> ChainHead:
    """The last link, once vouched for; raises ``SealingRefusedError`` otherwise.

    Every batch ends with a checkpoint at its last seal, and a purge keeps the checkpoint at
    its anchor: so the last seal after the anchor (or the anchor itself when none is left)
    must carry the last checkpoint, with the same hash, signed by a trusted key.
    """
    anchor = int(
        conn.execute(select(func.coalesce(func.max(AuditPurge.anchor_position), 0))).scalar_one()
    )
    seal = conn.execute(
        select(AuditSeal.position, AuditSeal.chain_hash)
        .where(AuditSeal.position > anchor)
        .order_by(AuditSeal.position.desc())
        .limit(1)
    ).first()
    checkpoint = conn.execute(
        select(*CHECKPOINT_SELECT).order_by(AuditCheckpoint.position.desc()).limit(1)
    ).first()
    if checkpoint is None:
        if seal is None and anchor == 0:
            return ChainHead(0, GENESIS_HASH, 0, None)
        raise SealingRefusedError(
            "checkpoint.missing", "the chain has seals or a purge but no checkpoint"
        )
    position, chain_hash = (seal[0], seal[1]) if seal is not None else (anchor, None)
    if checkpoint.position != position or (
        chain_hash is not None and checkpoint.head_hash != chain_hash
    ):
        raise SealingRefusedError(
            "head.mismatch",
            f"the last checkpoint (position {checkpoint.position}) is not at the last seal "
            f"(position {position}) or holds another hash",
        )
    try:
        created_us = check_checkpoint(verifier, checkpoint)
    except CheckpointSignatureError as exc:
        raise SealingRefusedError(
            f"checkpoint.{exc.code}", f"the checkpoint at position {position}: {exc}"
        ) from None
    return ChainHead(position, checkpoint.head_hash, anchor, created_us)


def subjects_by_record(rows: Sequence[Any]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    record_id_index = SUBJECT_COLUMNS.index("record_id")
    for row in rows:
        grouped[row[record_id_index]].append(row)
    return grouped


def _seal_batch(
    conn: Connection, signer: CheckpointSigner, batch_size: int
) -> tuple[int, ChainHead]:
    head = chain_head(conn, signer)
    position, previous = head.position, head.chain_hash
    rows = conn.execute(
        select(AuditPending.record_id, AuditSeal.position, *RECORD_SELECT)
        .select_from(AuditPending)
        .outerjoin(AuditRecord, AuditRecord.id == AuditPending.record_id)
        .outerjoin(AuditSeal, AuditSeal.record_id == AuditPending.record_id)
        .order_by(AuditPending.record_id)
        .limit(batch_size)
    ).all()
    # Queue entries without a record, or for a record sealed in the chain this batch extends,
    # can only come from outside the gateway; sealing them would fail forever, so they are
    # dropped and logged (verify reports what is actually wrong with the trail). A seal
    # elsewhere (at or below the purge anchor, say) is no seal of the chain but a row planted
    # to have the record dropped from the queue, unsealed, then deleted by the next purge: its
    # record stays queued and verify names it.
    stray: list[int] = []
    planted: list[int] = []
    records = []
    for row in rows:
        record_id, sealed_at = row[0], row[1]
        if row[2] is None or (sealed_at is not None and head.anchor < sealed_at <= head.position):
            stray.append(record_id)
        elif sealed_at is not None:
            planted.append(record_id)
        else:
            records.append(tuple(row[2:]))
    if stray:
        log.warning("audit_pending_stray_entries", count=len(stray))
        conn.execute(delete(AuditPending).where(AuditPending.record_id.in_(stray)))
    if planted:
        log.error("audit_pending_record_has_stray_seal", count=len(planted), record_id=planted[0])
    if not records:
        return 0, head
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
    if head.created_us is not None:
        # Checkpoint dates never go backwards (verify requires it), even when the sealing lock
        # passes to a machine whose clock is a little behind.
        created_at = max(created_at, _EPOCH + dt.timedelta(microseconds=head.created_us))
    payload = checkpoint_payload(position, previous, len(records), created_at)
    signature = signer.sign(payload)
    conn.execute(
        insert(AuditCheckpoint).values(
            position=position,
            head_hash=previous,
            record_count=len(records),
            created_at=created_at,
            # The key that made this signature, even if the signer's cache turned over since
            # ``key_id`` was read: verify requires the two to agree.
            key_id=signature_key_id(signature),
            signature=signature,
        )
    )
    conn.execute(
        delete(AuditPending).where(
            AuditPending.record_id.in_(
                select(AuditSeal.record_id).where(AuditSeal.position >= first_position)
            )
        )
    )
    return len(records), ChainHead(position, previous, head.anchor, None)


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
        _ = signer.key_id
        try:
            with sealing_transaction(engine) as locked:
                if locked is None:
                    return SealResult(sealed, checkpoints, head, busy=True)
                count, new_head = _seal_batch(locked, signer, batch_size)
        except SealingRefusedError as refused:
            log.error("audit_seal_refused", reason=refused.reason, detail=str(refused))
            return SealResult(sealed, checkpoints, head, refused=refused.reason)
        head = new_head.position
        if count:
            sealed += count
            checkpoints += 1
            # The witness kept outside the database (see the module docstring): hashes only.
            log.info(
                "audit_sealed",
                records=count,
                head_position=new_head.position,
                head_hash=new_head.chain_hash,
            )
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
