"""Retention: whole sealed segments go, the rest still verifies, nothing recent or unsealed goes."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from audit_factories import as_attacker, insert_entry, make_entry, subject_of, write_sealed
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError

from gateway.audit import Es256CheckpointSigner, purge_before, run_sealer_once, verify_trail
from gateway.audit.chain import purge_payload
from gateway.audit.models import AuditCheckpoint, AuditPurge, AuditRecord, AuditSubjectEntry
from gateway.database import Database, utcnow


def count(db: Database, table: type) -> int:
    with db.sync_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def cutoff_between(db: Database, signer: Es256CheckpointSigner) -> tuple[list[int], dt.datetime]:
    """Six old records (two checkpoints) sealed before the returned cutoff."""
    old = write_sealed(db, signer, 6, batches=2)
    time.sleep(0.01)
    cutoff = utcnow()
    time.sleep(0.01)
    return old, cutoff


def test_purge_then_verify_passes(db: Database, signer: Es256CheckpointSigner) -> None:
    old, cutoff = cutoff_between(db, signer)
    recent = write_sealed(db, signer, 4, start=100)
    result = purge_before(db.sync_engine, signer, cutoff)
    assert (result.anchor_position, result.records_deleted) == (6, 6)
    assert result.checkpoints_deleted == 1  # the one at position 3; position 6 is the anchor
    with db.sync_engine.connect() as conn:
        left = set(conn.execute(select(AuditRecord.id)).scalars())
    assert left == set(recent)
    assert count(db, AuditSubjectEntry) == 4
    report = verify_trail(db.sync_engine, signer)
    assert report.ok, report.problem
    assert (report.anchor_position, report.records, report.purges) == (6, 4, 1)
    assert not set(old) & left


def test_purge_keeps_unsealed_and_recent_records(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    _, cutoff = cutoff_between(db, signer)
    with db.sync_engine.begin() as conn:
        unsealed = insert_entry(conn, make_entry(50, subjects=[subject_of(50)]))
    recent = write_sealed(db, signer, 2, start=200)
    purge_before(db.sync_engine, signer, cutoff)
    with db.sync_engine.connect() as conn:
        left = set(conn.execute(select(AuditRecord.id)).scalars())
    # The unsealed record was sealed with the recent ones, after the cutoff: it stays.
    assert left == {unsealed, *recent}
    with db.sync_engine.begin() as conn:
        waiting = insert_entry(conn, make_entry(51))
    assert purge_before(db.sync_engine, signer, utcnow()).records_deleted == 3
    with db.sync_engine.connect() as conn:
        assert set(conn.execute(select(AuditRecord.id)).scalars()) == {waiting}
    run_sealer_once(db.sync_engine, signer)
    report = verify_trail(db.sync_engine, signer)
    assert report.ok, report.problem
    assert (report.purges, report.records) == (2, 1)


def test_nothing_old_enough_means_nothing_purged(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    cutoff = utcnow()
    write_sealed(db, signer, 3)
    result = purge_before(db.sync_engine, signer, cutoff)
    assert (result.anchor_position, result.records_deleted) == (None, 0)
    assert count(db, AuditPurge) == 0
    assert count(db, AuditRecord) == 3


def test_a_cutoff_in_the_future_is_refused(db: Database, signer: Es256CheckpointSigner) -> None:
    """A typo in --before must not wipe the whole trail."""
    write_sealed(db, signer, 2)
    with pytest.raises(ValueError, match="future"):
        purge_before(db.sync_engine, signer, utcnow() + dt.timedelta(days=1))
    assert count(db, AuditRecord) == 2


def test_after_a_purge_the_triggers_still_protect_what_is_left(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    _, cutoff = cutoff_between(db, signer)
    recent = write_sealed(db, signer, 2, start=300)
    purge_before(db.sync_engine, signer, cutoff)
    for statement in (
        "DELETE FROM audit_subject WHERE record_id = :id",
        "DELETE FROM audit_record WHERE id = :id",
        "DELETE FROM audit_seal WHERE record_id = :id",
        "DELETE FROM audit_checkpoint",
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.sync_engine.begin() as conn:
            conn.execute(text(statement), {"id": recent[0]})


def test_removing_the_start_without_a_recorded_purge_is_caught(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """Someone hiding old records cannot pass it off as retention."""
    old = write_sealed(db, signer, 6, batches=2)
    write_sealed(db, signer, 2, start=400)
    with as_attacker(db, "audit_record", "audit_subject", "audit_seal", "audit_checkpoint") as conn:
        for record_id in old:
            conn.execute(text("DELETE FROM audit_seal WHERE record_id = :id"), {"id": record_id})
            conn.execute(text("DELETE FROM audit_subject WHERE record_id = :id"), {"id": record_id})
            conn.execute(text("DELETE FROM audit_record WHERE id = :id"), {"id": record_id})
        conn.execute(text("DELETE FROM audit_checkpoint WHERE position <= 6"))
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None
    assert report.problem.code == "record.missing"
    assert "positions 1 to 6" in report.problem.message


def test_a_forged_purge_record_is_caught(db: Database, signer: Es256CheckpointSigner) -> None:
    write_sealed(db, signer, 6, batches=2)
    forger = Es256CheckpointSigner.generate()
    with db.sync_engine.connect() as conn:
        head = conn.execute(
            select(AuditCheckpoint.head_hash).where(AuditCheckpoint.position == 3)
        ).scalar_one()
    now = utcnow()
    with db.sync_engine.begin() as conn:
        conn.execute(
            insert(AuditPurge).values(
                purged_at=now,
                cutoff_at=now,
                anchor_position=3,
                head_hash=head,
                records_deleted=3,
                key_id=forger.key_id,
                signature=forger.sign(purge_payload(3, head, 3, now, now)),
            )
        )
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None
    assert report.problem.code == "purge.bad_signature"
