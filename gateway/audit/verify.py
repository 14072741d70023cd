"""``verify``: recompute the whole chain, check every signature, name the first bad record.

The verifier starts from the anchor of the latest signed purge (or from the genesis hash) and
streams seals joined with their records in position order, in chunks, recomputing each link
(see ``chain``). It checks, in order of appearance:

- every purge and checkpoint signature, against keys trusted from outside the audited database
  (see ``signing``): the signed payload matches the stored row, the ``key_id`` column names
  the key that signed, and the key was not retired (beyond a short grace) before the signed
  date; and that checkpoint dates never go backwards along positions;
- that no seal lies at or below the purge anchor (or below position 1) and no checkpoint below
  it: the walk never reads those rows, so they can only have been added from outside, to slip
  a forged record past the count of sealed records or get a fresh one deleted by a purge;
- that positions follow each other without a gap and that each sealed record still exists;
- that each recomputed link equals the stored one (a record or one of its subjects changed);
- that each checkpoint's head and count match the chain at its position (the stored links
  were rewritten consistently, which only the signed checkpoints can reveal);
- that no sealed record lies beyond the last signed checkpoint;
- that no record is dated well before the checkpoint preceding its seal (a record inserted
  later and backdated; legitimate late commits are bounded by the write timeout), nor well
  after the checkpoint covering it (that checkpoint was backdated, say to look signed before
  its key was retired); "well" is ``backdating_margin``, which also absorbs the clocks of
  several machines;
- given a witness (a position and its chain hash kept outside the database: the sealer logs
  each checkpoint's as ``audit_sealed``), that the chain holds that hash at that position;
- that every record is either sealed or queued for sealing.

It stops at the first problem, which names the record (id and request id) where the chain
first goes wrong; a malformed row (a timestamp that is none, a binary value) is such a problem,
never an exception. What a hash chain cannot reveal: a record inserted *and* sealed by someone
holding the database and recent enough to look current, a record deleted before it was sealed
(the pending window, under ``audit_seal_interval_seconds`` plus a batch), or, without a
witness, the chain cut back to an earlier checkpoint (the tail deleted with its checkpoint, or
an old backup put back).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, Engine, exists, func, select

from gateway.audit.chain import GENESIS_HASH, epoch_microseconds, link
from gateway.audit.errors import CheckpointSignatureError
from gateway.audit.models import (
    AuditCheckpoint,
    AuditPending,
    AuditPurge,
    AuditRecord,
    AuditSeal,
    AuditSubjectEntry,
)
from gateway.audit.sealer import (
    CHECKPOINT_SELECT,
    RECORD_SELECT,
    SUBJECT_SELECT,
    raw_columns,
    subjects_by_record,
)
from gateway.audit.signing import (
    MALFORMED,
    RETIRED_KEY_GRACE,
    CheckpointVerifier,
    check_checkpoint,
    check_purge,
)

DEFAULT_CHUNK_SIZE = 10_000
DEFAULT_BACKDATING_MARGIN = dt.timedelta(minutes=5)

_PURGE_SELECT = [
    AuditPurge.id,
    *raw_columns(
        AuditPurge.__table__,
        (
            "purged_at",
            "cutoff_at",
            "anchor_position",
            "head_hash",
            "records_deleted",
            "key_id",
            "signature",
        ),
    ),
]


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


class TrailNotIntactError(ValueError):
    """The trail does not verify; ``problem`` is the first thing found wrong."""

    def __init__(self, problem: VerificationProblem) -> None:
        super().__init__(f"{problem.code}: {problem.message}")
        self.problem = problem


@dataclass
class _Checkpoint:
    position: int
    head_hash: str
    record_count: int
    created_us: int


def _fail(code: str, message: str, row: Any = None, *, position: int | None = None) -> NoReturn:
    """Stop the walk; ``row`` (seal columns then record columns) names the record concerned."""
    if row is None:
        raise TrailNotIntactError(VerificationProblem(code, message, position=position))
    # row: (position, record_id, chain_hash, id, occurred_at, request_id, ...); the record's
    # own columns are None when it was deleted, and anything at all when malformed.
    request_id = row[5] if isinstance(row[5], str) else None
    raise TrailNotIntactError(
        VerificationProblem(code, message, position=row[0], record_id=row[1], request_id=request_id)
    )


def _anchor(
    conn: Connection, verifier: CheckpointVerifier, grace: dt.timedelta
) -> tuple[int, str, int]:
    """(position, hash, purge count) where verification starts."""
    position, head, count = 0, GENESIS_HASH, 0
    for row in conn.execute(select(*_PURGE_SELECT).order_by(AuditPurge.id)):
        try:
            check_purge(verifier, row, grace)
        except CheckpointSignatureError as exc:
            anchor = row.anchor_position if isinstance(row.anchor_position, int) else None
            _fail(f"purge.{exc.code}", f"purge {row.id}: {exc}", position=anchor)
        if row.anchor_position < position:
            _fail("purge.out_of_order", f"purge {row.id} goes back before an earlier purge")
        position, head, count = row.anchor_position, row.head_hash, count + 1
    return position, head, count


def _checkpoints(
    conn: Connection,
    verifier: CheckpointVerifier,
    after: int,
    chunk_size: int,
    grace: dt.timedelta,
    until: int | None = None,
) -> Iterator[_Checkpoint]:
    """Checked checkpoints from position ``after`` (the anchor's own) up to ``until``."""
    previous_us: int | None = None
    while True:
        query = select(*CHECKPOINT_SELECT).where(AuditCheckpoint.position >= after)
        if until is not None:
            query = query.where(AuditCheckpoint.position <= until)
        rows = conn.execute(query.order_by(AuditCheckpoint.position).limit(chunk_size)).all()
        for row in rows:
            try:
                created_us = check_checkpoint(verifier, row, grace)
            except CheckpointSignatureError as exc:
                _fail(
                    f"checkpoint.{exc.code}",
                    f"checkpoint at position {row.position}: {exc}",
                    position=row.position,
                )
            if previous_us is not None and created_us < previous_us:
                # Signed dates only move forward (the sealer makes sure): a checkpoint dated
                # before its predecessor was re-signed with a date of the forger's choosing.
                _fail(
                    "checkpoint.out_of_order",
                    f"checkpoint at position {row.position} is dated before the one preceding it",
                    position=row.position,
                )
            previous_us = created_us
            yield _Checkpoint(row.position, row.head_hash, row.record_count, created_us)
        if len(rows) < chunk_size:
            return
        after = rows[-1].position + 1


_SEAL_COLUMNS = (AuditSeal.position, AuditSeal.record_id, AuditSeal.chain_hash)


def _sealed_records(
    conn: Connection, after: int, chunk_size: int, until: int | None = None
) -> Iterator[tuple[Any, list[Any]]]:
    """(seal and record row, subject rows) in position order, after ``after`` up to ``until``."""
    while True:
        query = (
            select(*_SEAL_COLUMNS, *RECORD_SELECT)
            .select_from(AuditSeal)
            .outerjoin(AuditRecord, AuditRecord.id == AuditSeal.record_id)
            .where(AuditSeal.position > after)
        )
        if until is not None:
            query = query.where(AuditSeal.position <= until)
        rows = conn.execute(query.order_by(AuditSeal.position).limit(chunk_size)).all()
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


def _check_no_stray_rows(conn: Connection, anchor: int) -> None:
    """Seals at or below the anchor, checkpoints below it: rows the walk would never read.

    After a purge none is left (the purge deletes what it walked up to the anchor, and keeps
    only the anchor's checkpoint), and positions start at 1.
    """
    seal = conn.execute(
        select(*_SEAL_COLUMNS, *RECORD_SELECT)
        .select_from(AuditSeal)
        .outerjoin(AuditRecord, AuditRecord.id == AuditSeal.record_id)
        .where(AuditSeal.position <= anchor)
        .order_by(AuditSeal.position)
        .limit(1)
    ).first()
    if seal is not None:
        _fail(
            "seal.stray",
            f"record {seal[1]} is sealed at position {seal[0]}, where no seal can be (the chain "
            f"starts after position {anchor}): the seal was added outside the sealer",
            seal,
        )
    checkpoint = conn.execute(
        select(AuditCheckpoint.position)
        .where(AuditCheckpoint.position < max(anchor, 1))
        .order_by(AuditCheckpoint.position)
        .limit(1)
    ).scalar()
    if checkpoint is not None:
        _fail(
            "checkpoint.stray",
            f"a checkpoint lies at position {checkpoint}, before the chain starts (after "
            f"position {anchor}): it was added outside the sealer",
            position=checkpoint,
        )


def _witness_mismatch(position: int, row: Any) -> NoReturn:
    _fail(
        "witness.mismatch",
        f"the chain does not hold the witnessed hash at position {position}: it was rewritten "
        "or replaced since that checkpoint was witnessed",
        row,
        position=position,
    )


class _Walk:
    """The chain followed from an anchor, one sealed record at a time, with its checkpoints."""

    def __init__(
        self,
        checkpoints: Iterator[_Checkpoint],
        anchor: tuple[int, str],
        margin: dt.timedelta,
        witness: tuple[int, str] | None = None,
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
        # more than ``margin`` before it (epoch microseconds), they were backdated. Records
        # under a checkpoint were committed before it was signed: the latest of a segment,
        # dated more than ``margin`` after it, shows the checkpoint was backdated.
        self.margin_us = margin // dt.timedelta(microseconds=1)
        self.segment_floor: int | None = None
        self.segment_latest: tuple[int, Any] | None = None
        self.witness = witness
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
            # A witness below the anchor was removed by a signed purge: nothing left to check.
            if witness is not None and witness[0] == anchor[0] and witness[1] != anchor[1]:
                _witness_mismatch(witness[0], None)

    def _pass_checkpoint(self, checkpoint: _Checkpoint) -> None:
        if (
            self.segment_latest is not None
            and self.segment_latest[0] > checkpoint.created_us + self.margin_us
        ):
            row = self.segment_latest[1]
            _fail(
                "checkpoint.backdated",
                f"record {row[1]} is dated after the signed checkpoint at position "
                f"{checkpoint.position} that covers it: the checkpoint was backdated",
                row,
            )
        self.checked_checkpoints += 1
        self.last_checkpoint_position = checkpoint.position
        self.segment_start = checkpoint.position + 1
        self.segment_floor = checkpoint.created_us - self.margin_us
        self.segment_latest = None
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
        try:
            # Converted once, for both the link and the date checks.
            record[1] = occurred_us = epoch_microseconds(record[1])
            computed = link(self.previous, sealed_at, record, subjects)
        except MALFORMED:
            _fail(
                "record.malformed",
                f"record {record_id} at position {sealed_at}, or one of its subjects, holds a "
                "value of the wrong type (a timestamp that is none, a binary value)",
                row,
            )
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
        if self.segment_latest is None or occurred_us > self.segment_latest[0]:
            self.segment_latest = (occurred_us, row)
        if (
            self.witness is not None
            and self.witness[0] == sealed_at
            and self.witness[1] != computed
        ):
            _witness_mismatch(sealed_at, row)
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
        if self.witness is not None and self.witness[0] > self.position:
            _fail(
                "witness.missing",
                f"the chain ends at position {self.position}, before the witnessed position "
                f"{self.witness[0]}: records sealed and signed since were removed, or an older "
                "copy of the database was put back",
                position=self.position + 1,
            )


def _check_everything_sealed_or_queued(conn: Connection, sealed: int) -> int:
    """Records neither sealed nor queued were taken out of the queue: name the first one."""
    total = conn.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
    # Queue entries of sealed records do not count: one planted for a sealed record must not
    # make up for a record taken out of the queue.
    pending = conn.execute(
        select(func.count())
        .select_from(AuditPending)
        .join(AuditRecord, AuditRecord.id == AuditPending.record_id)
        .where(~exists().where(AuditSeal.record_id == AuditPending.record_id))
    ).scalar_one()
    if total <= sealed + pending:
        return int(pending)
    row = conn.execute(
        select(AuditRecord.id, *raw_columns(AuditRecord.__table__, ("request_id",)))
        .where(
            ~exists().where(AuditSeal.record_id == AuditRecord.id),
            ~exists().where(AuditPending.record_id == AuditRecord.id),
        )
        .order_by(AuditRecord.id)
        .limit(1)
    ).first()
    record_id, request_id = (row[0], row[1]) if row is not None else (None, None)
    raise TrailNotIntactError(
        VerificationProblem(
            "record.unqueued",
            f"record {record_id} is neither sealed nor waiting to be sealed",
            record_id=record_id,
            request_id=request_id if isinstance(request_id, str) else None,
        )
    )


def verify_segment(
    conn: Connection,
    verifier: CheckpointVerifier,
    until: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    backdating_margin: dt.timedelta = DEFAULT_BACKDATING_MARGIN,
    retired_key_grace: dt.timedelta = RETIRED_KEY_GRACE,
) -> tuple[int, int]:
    """Walk the chain from the last purge's anchor to the checkpoint at ``until``, as
    ``verify_trail`` does; returns (the anchor it started from, records walked). Raises
    ``TrailNotIntactError``. The purge deletes exactly this segment, so never unchecked rows."""
    anchor_position, anchor_hash, _ = _anchor(conn, verifier, retired_key_grace)
    walk = _Walk(
        _checkpoints(conn, verifier, anchor_position, chunk_size, retired_key_grace, until),
        (anchor_position, anchor_hash),
        backdating_margin,
    )
    for row, subjects in _sealed_records(conn, anchor_position, chunk_size, until):
        walk.step(row, subjects)
    walk.finish()
    if walk.last_checkpoint_position != until:
        _fail(
            "checkpoint.missing",
            f"the walk ended at position {walk.position}, not at the checkpoint at {until}",
            position=until,
        )
    return anchor_position, walk.records


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
    verifier: CheckpointVerifier,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    backdating_margin: dt.timedelta = DEFAULT_BACKDATING_MARGIN,
    retired_key_grace: dt.timedelta = RETIRED_KEY_GRACE,
    witness: tuple[int, str] | None = None,
) -> VerificationReport:
    """Verify the whole trail; ``report.problem`` is the first thing found wrong, if any.

    ``witness``: a (position, chain hash) recorded outside the database, which the chain must
    still hold (see the module docstring). ``retired_key_grace``: how long after its
    retirement a key's signature is still accepted (see ``signing.RETIRED_KEY_GRACE``).
    """
    started = time.perf_counter()
    records = checkpoints = purges = anchor_position = head = pending = 0
    problem: VerificationProblem | None = None
    with read_snapshot(engine) as conn:
        try:
            anchor_position, anchor_hash, purges = _anchor(conn, verifier, retired_key_grace)
            head = anchor_position
            _check_no_stray_rows(conn, anchor_position)
            walk = _Walk(
                _checkpoints(conn, verifier, anchor_position, chunk_size, retired_key_grace),
                (anchor_position, anchor_hash),
                backdating_margin,
                witness,
            )
            for row, subjects in _sealed_records(conn, anchor_position, chunk_size):
                walk.step(row, subjects)
            walk.finish()
            records, checkpoints, head = walk.records, walk.checked_checkpoints, walk.position
            pending = _check_everything_sealed_or_queued(conn, records)
        except TrailNotIntactError as failed:
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
