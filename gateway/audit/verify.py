"""``verify``: recompute the whole chain, check every signature, name the first bad record.

The verifier starts from the anchor of the latest signed purge (or from the genesis hash) and
streams seals joined with their records in position order, in chunks, recomputing each link
(see ``chain``). It checks, in order of appearance:

- every purge and checkpoint signature, and that the signed payload matches the stored row;
- that positions follow each other without a gap and that each sealed record still exists;
- that each recomputed link equals the stored one (a record or one of its subjects changed);
- that each checkpoint's head and count match the chain at its position (the stored links
  were rewritten consistently, which only the signed checkpoints can reveal);
- that no sealed record lies beyond the last signed checkpoint;
- that no record is dated well before the checkpoint preceding its seal (a record inserted
  later and backdated; legitimate late commits are bounded by the write timeout);
- that every record is either sealed or queued for sealing.

It stops at the first problem, which names the record (id and request id) where the chain
first goes wrong. What a hash chain cannot reveal: a record inserted *and* sealed by someone
holding the database and recent enough to look current, or a record deleted before it was
sealed (the pending window, under ``audit_seal_interval_seconds`` plus a batch).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, Engine, exists, func, select

from gateway.audit.chain import (
    GENESIS_HASH,
    checkpoint_payload,
    epoch_microseconds,
    link,
    purge_payload,
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
from gateway.audit.sealer import RECORD_SELECT, SUBJECT_SELECT, subjects_by_record
from gateway.audit.signing import CheckpointSigner

DEFAULT_CHUNK_SIZE = 10_000
DEFAULT_BACKDATING_MARGIN = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class VerificationProblem:
    """The first thing found wrong; ``record_id``/``request_id`` name the record concerned."""

    code: str
    message: str
    position: int | None = None
    record_id: int | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class VerificationReport:
    records: int
    checkpoints: int
    purges: int
    anchor_position: int
    head_position: int
    pending: int
    seconds: float
    problem: VerificationProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class _VerificationFailedError(Exception):
    def __init__(self, problem: VerificationProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class _Checkpoint:
    position: int
    head_hash: str
    record_count: int
    created_at: dt.datetime


def _check_signature(signer: CheckpointSigner, token: str, expected: bytes, what: str) -> None:
    try:
        payload = signer.verify(token)
    except CheckpointSignatureError as exc:
        raise _VerificationFailedError(
            VerificationProblem(f"{what}.bad_signature", f"the {what} signature does not verify")
        ) from exc
    if payload != expected:
        raise _VerificationFailedError(
            VerificationProblem(
                f"{what}.mismatch", f"the stored {what} differs from what its signature covers"
            )
        )


def _anchor(conn: Connection, signer: CheckpointSigner) -> tuple[int, str, int]:
    """(position, hash, purge count) where verification starts."""
    position, head, count = 0, GENESIS_HASH, 0
    for row in conn.execute(select(AuditPurge.__table__).order_by(AuditPurge.id)):
        expected = purge_payload(
            row.anchor_position, row.head_hash, row.records_deleted, row.cutoff_at, row.purged_at
        )
        try:
            _check_signature(signer, row.signature, expected, "purge")
        except _VerificationFailedError as failed:
            raise _VerificationFailedError(
                VerificationProblem(
                    failed.problem.code,
                    f"purge {row.id}: {failed.problem.message}",
                    position=row.anchor_position,
                )
            ) from None
        if row.anchor_position < position:
            raise _VerificationFailedError(
                VerificationProblem(
                    "purge.out_of_order", f"purge {row.id} goes back before an earlier purge"
                )
            )
        position, head, count = row.anchor_position, row.head_hash, count + 1
    return position, head, count


def _checkpoints(
    conn: Connection, signer: CheckpointSigner, after: int, chunk_size: int
) -> Iterator[_Checkpoint]:
    while True:
        rows = conn.execute(
            select(AuditCheckpoint.__table__)
            .where(AuditCheckpoint.position >= after)
            .order_by(AuditCheckpoint.position)
            .limit(chunk_size)
        ).all()
        for row in rows:
            expected = checkpoint_payload(
                row.position, row.head_hash, row.record_count, row.created_at
            )
            try:
                _check_signature(signer, row.signature, expected, "checkpoint")
            except _VerificationFailedError as failed:
                raise _VerificationFailedError(
                    VerificationProblem(
                        failed.problem.code,
                        f"checkpoint at position {row.position}: {failed.problem.message}",
                        position=row.position,
                    )
                ) from None
            yield _Checkpoint(row.position, row.head_hash, row.record_count, row.created_at)
        if len(rows) < chunk_size:
            return
        after = rows[-1].position + 1


_SEAL_COLUMNS = (AuditSeal.position, AuditSeal.record_id, AuditSeal.chain_hash)


def _sealed_records(
    conn: Connection, after: int, chunk_size: int
) -> Iterator[tuple[Any, list[Any]]]:
    """(seal and record row, subject rows) in position order, after position ``after``."""
    while True:
        rows = conn.execute(
            select(*_SEAL_COLUMNS, *RECORD_SELECT)
            .select_from(AuditSeal)
            .outerjoin(AuditRecord, AuditRecord.id == AuditSeal.record_id)
            .where(AuditSeal.position > after)
            .order_by(AuditSeal.position)
            .limit(chunk_size)
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        subject_rows = conn.execute(
            select(*SUBJECT_SELECT)
            .where(
                AuditSubjectEntry.record_id.in_(
                    select(AuditSeal.record_id).where(AuditSeal.position.between(after + 1, last))
                )
            )
            .order_by(AuditSubjectEntry.id)
        ).all()
        subjects = subjects_by_record(subject_rows)
        for row in rows:
            yield row, subjects.get(row[1], [])
        after = last


def _fail(code: str, message: str, row: Any = None, *, position: int | None = None) -> NoReturn:
    """Stop the walk; ``row`` (seal columns then record columns) names the record concerned."""
    if row is None:
        raise _VerificationFailedError(VerificationProblem(code, message, position=position))
    # row: (position, record_id, chain_hash, id, occurred_at, request_id, ...); the record's
    # own columns are None when it was deleted.
    raise _VerificationFailedError(
        VerificationProblem(code, message, position=row[0], record_id=row[1], request_id=row[5])
    )


class _Walk:
    """The chain followed from an anchor, one sealed record at a time, with its checkpoints."""

    def __init__(
        self, checkpoints: Iterator[_Checkpoint], anchor: tuple[int, str], margin: dt.timedelta
    ) -> None:
        self.checkpoints = checkpoints
        self.position, self.previous = anchor
        self.before_previous = self.previous  # the link two back, to recognise insertions
        self.previous_row: Any = None
        self.records = 0
        self.checked_checkpoints = 0
        self.segment_start = anchor[0] + 1
        self.last_checkpoint_position = anchor[0]
        self.first_uncovered: Any = None
        # Records sealed after a checkpoint were written after it, but for late commits: dated
        # more than ``margin`` before it (epoch microseconds), they were backdated.
        self.margin_us = margin // dt.timedelta(microseconds=1)
        self.segment_floor: int | None = None
        self.upcoming = next(checkpoints, None)
        if anchor[0] > 0:
            # After a purge the anchor checkpoint is kept and must match the signed purge.
            upcoming = self.upcoming
            if (
                upcoming is None
                or upcoming.position != anchor[0]
                or upcoming.head_hash != anchor[1]
            ):
                _fail(
                    "checkpoint.missing",
                    f"the checkpoint at the purge anchor (position {anchor[0]}) is missing "
                    "or does not match the signed purge",
                    position=anchor[0],
                )
            self._pass_checkpoint(upcoming)

    def _pass_checkpoint(self, checkpoint: _Checkpoint) -> None:
        self.checked_checkpoints += 1
        self.last_checkpoint_position = checkpoint.position
        self.segment_start = checkpoint.position + 1
        self.segment_floor = epoch_microseconds(checkpoint.created_at) - self.margin_us
        self.upcoming = next(self.checkpoints, None)

    def step(self, row: Any, subjects: list[Any]) -> None:
        sealed_at, record_id, stored = row[0], row[1], row[2]
        if sealed_at != self.position + 1:
            _fail(
                "record.missing",
                f"records at positions {self.position + 1} to {sealed_at - 1} were removed "
                f"(found next: record {record_id})",
                row,
            )
        record = list(row[3:])
        if record[0] is None:
            _fail("record.missing", f"record {record_id}, sealed at {sealed_at}, was deleted", row)
        # Converted once, for both the link and the date check.
        record[1] = occurred_us = epoch_microseconds(record[1])
        computed = link(self.previous, sealed_at, record, subjects)
        if computed != stored:
            # Sealed one position earlier, after the link two back: a record was slipped in
            # just before this one, and that one is the bad record.
            if self.previous_row is not None and stored == link(
                self.before_previous, sealed_at - 1, record, subjects
            ):
                _fail(
                    "record.inserted",
                    f"record {self.previous_row[1]} was inserted into the chain at "
                    f"position {sealed_at - 1}",
                    self.previous_row,
                )
            _fail(
                "record.altered",
                f"record {record_id} at position {sealed_at} does not match its seal: the "
                "record, one of its subjects or its place in the chain changed",
                row,
            )
        if self.segment_floor is not None and occurred_us < self.segment_floor:
            _fail(
                "record.backdated",
                f"record {record_id} is dated before the checkpoint preceding its seal",
                row,
            )
        self.records += 1
        self.position, self.before_previous, self.previous = sealed_at, self.previous, computed
        self.previous_row = row
        upcoming = self.upcoming
        if upcoming is not None and upcoming.position == sealed_at:
            if upcoming.head_hash != computed or upcoming.record_count != (
                sealed_at - self.last_checkpoint_position
            ):
                _fail(
                    "checkpoint.mismatch",
                    f"the chain between positions {self.segment_start} and {sealed_at} was "
                    f"rewritten: it no longer matches the signed checkpoint at {sealed_at}",
                    row,
                )
            self._pass_checkpoint(upcoming)
        elif upcoming is None and self.first_uncovered is None:
            self.first_uncovered = row

    def finish(self) -> None:
        if self.upcoming is not None:
            _fail(
                "record.missing",
                f"records at positions {self.position + 1} to {self.upcoming.position} were "
                f"removed (the signed checkpoint at position {self.upcoming.position} covers "
                "them)",
                position=self.position + 1,
            )
        if self.first_uncovered is not None:
            _fail(
                "record.unsigned",
                f"record {self.first_uncovered[1]} is sealed beyond the last signed "
                "checkpoint: it was added outside the sealer",
                self.first_uncovered,
            )


def _walk(
    conn: Connection,
    signer: CheckpointSigner,
    anchor: tuple[int, str],
    chunk_size: int,
    margin: dt.timedelta,
) -> tuple[int, int, int]:
    """Follow the chain from ``anchor``; returns (records, checkpoints, head position)."""
    walk = _Walk(_checkpoints(conn, signer, anchor[0], chunk_size), anchor, margin)
    for row, subjects in _sealed_records(conn, anchor[0], chunk_size):
        walk.step(row, subjects)
    walk.finish()
    return walk.records, walk.checked_checkpoints, walk.position


def _check_everything_sealed_or_queued(conn: Connection, sealed: int, anchor: int) -> int:
    """Records neither sealed nor queued were taken out of the queue: name the first one."""
    total = conn.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
    pending = conn.execute(
        select(func.count())
        .select_from(AuditPending)
        .join(AuditRecord, AuditRecord.id == AuditPending.record_id)
    ).scalar_one()
    below_anchor = 0
    if anchor:
        below_anchor = conn.execute(
            select(func.count())
            .select_from(AuditSeal)
            .join(AuditRecord, AuditRecord.id == AuditSeal.record_id)
            .where(AuditSeal.position <= anchor)
        ).scalar_one()
    if total <= sealed + pending + below_anchor:
        return int(pending)
    row = conn.execute(
        select(AuditRecord.id, AuditRecord.request_id)
        .where(
            ~exists().where(AuditSeal.record_id == AuditRecord.id),
            ~exists().where(AuditPending.record_id == AuditRecord.id),
        )
        .order_by(AuditRecord.id)
        .limit(1)
    ).first()
    record_id, request_id = (row[0], row[1]) if row is not None else (None, None)
    raise _VerificationFailedError(
        VerificationProblem(
            "record.unqueued",
            f"record {record_id} is neither sealed nor waiting to be sealed",
            record_id=record_id,
            request_id=request_id,
        )
    )


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction over the whole walk, so a sealer running meanwhile cannot show
    seals whose checkpoint the walk has already passed."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # pysqlite opens no transaction for reads: open one by hand (a WAL snapshot).
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
            return
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn


def verify_trail(
    engine: Engine,
    signer: CheckpointSigner,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    backdating_margin: dt.timedelta = DEFAULT_BACKDATING_MARGIN,
) -> VerificationReport:
    """Verify the whole trail; ``report.problem`` is the first thing found wrong, if any."""
    started = time.perf_counter()
    records = checkpoints = purges = anchor_position = head = pending = 0
    problem: VerificationProblem | None = None
    with read_snapshot(engine) as conn:
        try:
            anchor_position, anchor_hash, purges = _anchor(conn, signer)
            head = anchor_position
            records, checkpoints, head = _walk(
                conn, signer, (anchor_position, anchor_hash), chunk_size, backdating_margin
            )
            pending = _check_everything_sealed_or_queued(conn, records, anchor_position)
        except _VerificationFailedError as failed:
            problem = failed.problem
    return VerificationReport(
        records=records,
        checkpoints=checkpoints,
        purges=purges,
        anchor_position=anchor_position,
        head_position=head,
        pending=pending,
        seconds=round(time.perf_counter() - started, 3),
        problem=problem,
    )
