"""The audit writer: every request's record committed before its answer, with group commit.

``await writer.write(entry)`` returns only once the entry's record, its subjects and its place
in the sealing queue are committed, and raises ``AuditUnavailableError`` when that did not
happen within ``timeout`` seconds or the database refused: the caller must then answer 503 and
send no data. Nothing is ever swallowed.

Committing one transaction per request would cap throughput at the database's commit rate.
Instead one background task takes every entry waiting at that moment and commits them
together (one statement on PostgreSQL, one multi-row INSERT per table on SQLite, always one
transaction), then resolves each caller's future: commits are shared, the per-request
guarantee is not weakened. When the writer was
idle an entry is flushed at once; under load a batch closes when it reaches ``batch_size``
entries or ``delay`` seconds after the previous commit, whichever comes first.

A caller that timed out may still see its record committed afterwards: the trail then holds
a record of a request that answered 503, which overstates rather than hides a disclosure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import operator
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.audit.errors import AuditUnavailableError
from gateway.audit.models import AuditPending, AuditRecord, AuditSubjectEntry
from gateway.audit.schemas import AuditEntry
from gateway.database import Database
from gateway.reads import CompiledRead, HeldConnection, compile_read

log = structlog.get_logger(__name__)

# SQLite: one multi-row INSERT ... RETURNING. Its rows come back in no promised order, but the
# statement runs alone under SQLite's write lock and numbers rows one after another in VALUES
# order, so the ids sorted ascending are the entries' ids in order.
_INSERT_RECORDS_SQLITE = insert(AuditRecord).returning(AuditRecord.id)
_INSERT_SUBJECTS_SQLITE = insert(AuditSubjectEntry)
_INSERT_PENDING_SQLITE = insert(AuditPending)

# PostgreSQL: a batch is one statement whose text does not depend on the batch size, so the
# driver prepares it once. Its rows travel as one JSON document (a list of entries, each a
# list of the record's values in the order below, then its subjects): the driver encodes one
# string instead of checking every element of some twenty typed arrays, which cost more than
# the rest of the batch. Rows are inserted in entry order and draw ascending ids from the
# sequence, so again sorted ids follow entry order.
_RECORD_TYPES = {
    "occurred_at": "timestamptz",
    "request_id": "text",
    "client_id": "text",
    "partner_id": "integer",
    "connector": "text",
    "connector_version": "integer",
    "operation": "text",
    "purpose": "text",
    "recipient": "text",
    "legal_basis": "text",
    "consent_id": "text",
    "case_reference": "text",
    "outcome": "text",
    "reason_code": "text",
    "http_status": "smallint",
    "response_sha256": "text",
    "latency_us": "integer",
}
_COLUMNS = ", ".join(_RECORD_TYPES)
# An entry's attributes bear the columns' names: its values in column order, in one call.
_record_values = operator.attrgetter(*_RECORD_TYPES)
_SUBJECTS_AT = len(_RECORD_TYPES)  # the position of an entry's subjects in its JSON list
_VALUES = ", ".join(
    f"CAST(entry.item->>{position} AS {kind})"
    for position, kind in enumerate(_RECORD_TYPES.values())
)
# The three inserts of a batch as one statement, run by asyncpg itself outside any transaction:
# one round trip per batch instead of five (BEGIN, three INSERTs, COMMIT), which at low load is
# paid per request, and none of SQLAlchemy's work per execution. A single statement is atomic:
# its records, subjects and queue entries commit together or not at all. ``numbered`` gives
# each new id its entry's rank (ids ascend in entry order, above); subjects are inserted in
# entry then list order, so that their ids follow that order as the chain expects.
_INSERT_BATCH_POSTGRESQL = text(
    "WITH entry AS (SELECT e.value AS item, e.ordinality AS entry_order "  # noqa: S608
    "FROM jsonb_array_elements(CAST(:batch AS jsonb)) WITH ORDINALITY AS e), "
    f"record AS (INSERT INTO audit_record ({_COLUMNS}) "
    f"SELECT {_VALUES} FROM entry ORDER BY entry.entry_order RETURNING id), "
    "numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS entry_order FROM record), "
    "subject AS (INSERT INTO audit_subject "
    "(record_id, subject_kind, pseudonym, key_id, occurred_at) "
    "SELECT numbered.id, s.value->>0, s.value->>1, s.value->>2, "
    "CAST(entry.item->>0 AS timestamptz) "
    "FROM entry JOIN numbered ON numbered.entry_order = entry.entry_order "
    f"CROSS JOIN LATERAL jsonb_array_elements(entry.item->{_SUBJECTS_AT}) "
    "WITH ORDINALITY AS s ORDER BY entry.entry_order, s.ordinality), "
    "pending AS (INSERT INTO audit_pending (record_id) SELECT id FROM record) "
    "SELECT id FROM numbered ORDER BY entry_order"
)


def _batch_document(entries: list[AuditEntry]) -> str:
    """The batch as the JSON document the PostgreSQL statement reads."""
    batch = [
        [*_record_values(entry), [[s.kind, s.pseudonym, s.key_id] for s in entry.subjects]]
        for entry in entries
    ]
    # orjson: a few microseconds less per entry than the standard library. Timestamps still go
    # through ``_json_value``, so that their text is exactly ``isoformat()``'s.
    return orjson.dumps(batch, default=_json_value, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def _json_value(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()  # aware UTC, to the microsecond: exactly what is stored
    raise TypeError(f"an audit record holds no {type(value).__name__}")


@dataclass
class WriterStats:
    """Counters for tests and metrics: how many transactions carried how many records."""

    transactions: int = 0
    records: int = 0
    failed_transactions: int = 0


def record_row(entry: AuditEntry) -> dict[str, Any]:
    """The ``audit_record`` column values of an entry (the id comes from the database)."""
    return dict(zip(_RECORD_TYPES, _record_values(entry), strict=True))


def _expire(future: asyncio.Future[int]) -> None:
    if not future.done():
        future.set_exception(AuditUnavailableError("the audit record was not committed in time"))


class AuditWriter:
    def __init__(
        self,
        db: Database,
        *,
        timeout: float = 2.0,
        batch_size: int = 500,
        delay: float = 0.001,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._engine = db.async_engine
        self._connection = HeldConnection(self._engine)
        self._batch_postgresql = (
            compile_read(_INSERT_BATCH_POSTGRESQL, self._engine.dialect)
            if self._engine.dialect.name == "postgresql"
            else None
        )
        self._timeout = timeout
        self._batch_size = batch_size
        self._delay = delay
        self._queue: list[tuple[AuditEntry, asyncio.Future[int]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_commit = float("-inf")
        self.stats = WriterStats()

    async def __aenter__(self) -> AuditWriter:
        self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._closing

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the audit writer is already started")
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop; later writes raise ``AuditUnavailableError``."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await self._connection.close()

    async def write(self, entry: AuditEntry) -> int:
        """Commit ``entry``; returns the record id once committed, never before."""
        if not self.running:
            raise AuditUnavailableError("the audit writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._queue.append((entry, future))
        self._wakeup.set()
        # A plain timer rather than asyncio.timeout: no cancellation machinery on every
        # request. Expiry fails this caller's future only; the batch's commit goes on in the
        # writer's task, which skips futures already done.
        deadline = loop.call_later(self._timeout, _expire, future)
        try:
            return await future
        finally:
            deadline.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            busy = loop.time() - self._last_commit < self._delay
            if busy and len(self._queue) < self._batch_size and not self._closing:
                await asyncio.sleep(self._delay)
            else:
                # Let requests already scheduled in this turn of the loop join the batch.
                await asyncio.sleep(0)
            batch = self._queue[: self._batch_size]
            del self._queue[: self._batch_size]
            await self._commit(batch)
            self._last_commit = loop.time()

    async def _commit(self, batch: list[tuple[AuditEntry, asyncio.Future[int]]]) -> None:
        entries = [entry for entry, _ in batch]
        try:
            if self._batch_postgresql is None:
                async with self._engine.begin() as conn:
                    ids = await self._insert_sqlite(conn, entries)
            else:
                ids = await self._insert_postgresql(self._batch_postgresql, entries)
        except BaseException as exc:
            self.stats.failed_transactions += 1
            log.error("audit_write_failed", records=len(batch), error_type=type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    error = AuditUnavailableError("the audit database refused the records")
                    error.__cause__ = exc
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        self.stats.transactions += 1
        self.stats.records += len(batch)
        for (_, future), record_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(record_id)

    @staticmethod
    def _subject_rows(entries: list[AuditEntry], ids: list[int]) -> list[dict[str, Any]]:
        return [
            {
                "record_id": record_id,
                "subject_kind": subject.kind,
                "pseudonym": subject.pseudonym,
                "key_id": subject.key_id,
                "occurred_at": entry.occurred_at,
            }
            for entry, record_id in zip(entries, ids, strict=True)
            for subject in entry.subjects
        ]

    async def _insert_sqlite(self, conn: AsyncConnection, entries: list[AuditEntry]) -> list[int]:
        rows = [record_row(entry) for entry in entries]
        ids = sorted((await conn.execute(_INSERT_RECORDS_SQLITE, rows)).scalars())
        subjects = self._subject_rows(entries, ids)
        if subjects:
            await conn.execute(_INSERT_SUBJECTS_SQLITE, subjects)
        await conn.execute(_INSERT_PENDING_SQLITE, [{"record_id": i} for i in ids])
        return ids

    async def _insert_postgresql(
        self, statement: CompiledRead, entries: list[AuditEntry]
    ) -> list[int]:
        document = {"batch": _batch_document(entries)}
        ids = [row[0] for row in await self._connection.fetch(statement, document)]
        if len(ids) != len(entries):
            raise RuntimeError("the audit batch returned another number of ids than entries")
        return ids
