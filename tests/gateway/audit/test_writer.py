"""The writer: group commit, each caller released only after its own commit, fail closed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from audit_factories import NIR, make_entry, subject_of
from sqlalchemy import event, func, select, text

from gateway.audit import AuditEntry, AuditSubject, AuditUnavailableError, AuditWriter
from gateway.audit.models import AuditPending, AuditRecord, AuditSubjectEntry
from gateway.database import Database
from gateway.errors import ServiceUnavailableError


def count_record_inserts(db: Database) -> list[str]:
    statements: list[str] = []

    @event.listens_for(db.async_engine.sync_engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_RECORD"):
            statements.append(statement)

    return statements


async def test_concurrent_writes_share_insert_transactions(
    db: Database, writer: AuditWriter
) -> None:
    """Without grouping, every request would pay a commit of its own and throughput would cap."""
    inserts = count_record_inserts(db)
    ids = await asyncio.gather(*(writer.write(make_entry(i)) for i in range(200)))
    assert len(set(ids)) == 200
    assert writer.stats.records == 200
    assert writer.stats.transactions < 20
    assert len(inserts) < 20
    with db.sync_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditRecord)).scalar() == 200
        assert conn.execute(select(func.count()).select_from(AuditPending)).scalar() == 200


async def test_each_caller_returns_only_after_its_row_is_committed(
    db: Database, writer: AuditWriter
) -> None:
    """If write() returned before the commit, a response could leave without its record."""
    seen_from_elsewhere: list[bool] = []

    async def request(index: int) -> None:
        record_id = await writer.write(make_entry(index, subjects=[subject_of(index)]))
        # A separate connection sees only committed rows.
        with db.sync_engine.connect() as conn:
            found = conn.execute(
                select(AuditRecord.request_id).where(AuditRecord.id == record_id)
            ).scalar()
            subjects = conn.execute(
                select(func.count())
                .select_from(AuditSubjectEntry)
                .where(AuditSubjectEntry.record_id == record_id)
            ).scalar()
        seen_from_elsewhere.append(found == f"req-{index:06d}" and subjects == 1)

    await asyncio.gather(*(request(i) for i in range(50)))
    assert seen_from_elsewhere == [True] * 50


async def test_records_keep_every_field_and_subject(db: Database, writer: AuditWriter) -> None:
    subjects = [subject_of(1), subject_of(2, "siren"), subject_of(3)]
    entry = make_entry(1, subjects=subjects, consent_id="consent-42", reason_code=None)
    record_id = await writer.write(entry)
    with db.sync_engine.connect() as conn:
        row = conn.execute(select(AuditRecord).where(AuditRecord.id == record_id)).one()
        stored = conn.execute(
            select(
                AuditSubjectEntry.subject_kind,
                AuditSubjectEntry.pseudonym,
                AuditSubjectEntry.key_id,
            )
            .where(AuditSubjectEntry.record_id == record_id)
            .order_by(AuditSubjectEntry.id)
        ).all()
    assert row.partner_id == 7
    assert row.consent_id == "consent-42"
    assert row.response_sha256 == entry.response_sha256
    assert row.occurred_at == entry.occurred_at
    assert [tuple(s) for s in stored] == [tuple(s) for s in subjects]


async def test_a_failing_database_fails_every_waiting_caller(tmp_path: Any) -> None:
    """Fail closed: a caller whose record was not committed must never be told it was."""
    unmigrated = Database(f"sqlite:///{tmp_path}/empty.db")
    async with AuditWriter(unmigrated) as writer:
        results = await asyncio.gather(
            *(writer.write(make_entry(i)) for i in range(20)), return_exceptions=True
        )
        assert writer.stats.failed_transactions >= 1
    await unmigrated.dispose()
    assert all(isinstance(result, AuditUnavailableError) for result in results)
    # It renders as the 503 the client must get, with a stable code and no internal detail.
    error = results[0]
    assert isinstance(error, ServiceUnavailableError)
    assert error.code == "audit.unavailable"
    assert "sqlite" not in error.detail.lower()


async def test_a_write_that_cannot_commit_in_time_raises(db: Database, settings: Any) -> None:
    """A database that hangs must not hold a response forever, nor let it go unrecorded."""
    blocker = db.sync_engine.connect()
    if blocker.dialect.name == "postgresql":
        blocker.exec_driver_sql("BEGIN")
        blocker.exec_driver_sql("LOCK TABLE audit_record IN ACCESS EXCLUSIVE MODE")
    else:
        blocker.execution_options(isolation_level="AUTOCOMMIT")
        blocker.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        async with AuditWriter(db, timeout=0.2) as writer:
            with pytest.raises(AuditUnavailableError):
                await writer.write(make_entry(1))
            blocker.exec_driver_sql("ROLLBACK")
            # Once the database answers again, writes succeed again. The first batch may still
            # be finishing (SQLite's busy handler sleeps between its tries), and a try times
            # out after 0.2 s: a slow machine may need a few.
            record_id = 0
            for _ in range(50):
                try:
                    record_id = await writer.write(make_entry(2))
                    break
                except AuditUnavailableError:
                    continue
            assert record_id > 0
    finally:
        blocker.close()
        await db.async_engine.dispose()


async def test_a_stopped_writer_refuses_at_once(db: Database) -> None:
    writer = AuditWriter(db)
    with pytest.raises(AuditUnavailableError):
        await writer.write(make_entry(1))
    writer.start()
    await writer.stop()
    with pytest.raises(AuditUnavailableError):
        await writer.write(make_entry(1))
    await db.async_engine.dispose()


async def test_stop_commits_what_is_queued(db: Database) -> None:
    writer = AuditWriter(db)
    writer.start()
    pending = [asyncio.create_task(writer.write(make_entry(i))) for i in range(30)]
    await asyncio.sleep(0)
    await writer.stop()
    assert len({await task for task in pending}) == 30
    await db.async_engine.dispose()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipient", "x" * 201),
        ("case_reference", "y" * 101),
        ("purpose", "nul\x00byte"),
        ("client_id", "\ud800"),
        ("http_status", 42),
        ("outcome", "maybe"),
        ("response_sha256", "not-a-digest"),
        ("latency_us", -1),
        ("request_id", ""),
    ],
)
def test_an_entry_the_database_would_refuse_fails_alone_when_built(field: str, value: Any) -> None:
    """One bad entry inside a group commit would otherwise fail every request of the batch."""
    with pytest.raises((ValueError, TypeError)):
        make_entry(1, **{field: value})


def test_subjects_must_be_pseudonyms_not_identifiers() -> None:
    with pytest.raises(ValueError, match="pseudonym"):
        make_entry(1, subjects=[AuditSubject("nir", NIR, "pk-test")])
    with pytest.raises(ValueError, match="kind"):
        make_entry(1, subjects=[("passport", "a" * 64, "pk-test")])


def test_a_nir_typed_in_free_text_is_masked() -> None:
    spaced = f"{NIR[0]} {NIR[1:3]} {NIR[3:5]} {NIR[5:7]} {NIR[7:10]} {NIR[10:13]} {NIR[13:]}"
    entry = make_entry(1, case_reference=f"dossier {NIR}", recipient=f"pour {spaced}")
    assert entry.case_reference == "dossier [NIR]"
    assert entry.recipient == "pour [NIR]"


def test_timestamps_must_be_aware() -> None:
    import datetime as dt

    with pytest.raises(ValueError, match="timezone"):
        make_entry(1, occurred_at=dt.datetime(2026, 1, 1))  # noqa: DTZ001
    entry = AuditEntry(
        request_id="r", operation="data.disclosed", outcome="refused", http_status=403
    )
    assert entry.occurred_at.tzinfo is not None


async def test_postgresql_ids_and_text_survive_the_round_trip(
    db: Database, writer: AuditWriter
) -> None:
    """Non-ASCII text (accents in a recipient), quotes and backslashes are stored and read back
    unchanged, and absent values stay absent."""
    reference = 'dossier "7" \\ n°3\ttab'
    record_id = await writer.write(
        make_entry(
            1,
            recipient="Caisse d'allocations familiales — Île",
            case_reference=reference,
            legal_basis=None,
        )
    )
    with db.sync_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT recipient, case_reference, legal_basis FROM audit_record WHERE id = :id"),
            {"id": record_id},
        ).one()
    assert tuple(stored) == ("Caisse d'allocations familiales — Île", reference, None)


async def test_refusals_before_anything_is_known_are_recorded(
    db: Database, writer: AuditWriter
) -> None:
    """A request refused at the token check has no client, partner, purpose nor subject."""
    entries = [
        AuditEntry(
            request_id=f"anon-{i}",
            operation="data.refused",
            outcome="refused",
            http_status=401,
            reason_code="token.invalid",
        )
        for i in range(5)
    ]
    ids = await asyncio.gather(*(writer.write(entry) for entry in entries))
    with db.sync_engine.connect() as conn:
        rows = conn.execute(
            select(AuditRecord.request_id, AuditRecord.partner_id, AuditRecord.latency_us)
            .where(AuditRecord.id.in_(ids))
            .order_by(AuditRecord.id)
        ).all()
    assert [tuple(row) for row in rows] == [(f"anon-{i}", None, None) for i in range(5)]
