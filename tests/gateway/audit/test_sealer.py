"""The sealer: everything committed gets sealed, late commits included, one sealer at a time."""

from __future__ import annotations

import asyncio

import pytest
from audit_factories import insert_entry, make_entry, subject_of, write_sealed
from sqlalchemy import func, insert, select, text

from gateway.audit import AuditWriter, Es256CheckpointSigner, run_sealer_once, verify_trail
from gateway.audit.models import AuditCheckpoint, AuditPending, AuditSeal
from gateway.audit.sealer import sealing_transaction
from gateway.database import Database


def count(db: Database, table: type) -> int:
    with db.sync_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def positions(db: Database) -> dict[int, int]:
    with db.sync_engine.connect() as conn:
        rows = conn.execute(select(AuditSeal.record_id, AuditSeal.position)).all()
    return {record_id: position for record_id, position in rows}


async def test_one_run_seals_everything_written_before_it(
    db: Database, writer: AuditWriter, signer: Es256CheckpointSigner
) -> None:
    """Sealing lag: whatever is committed when the sealer runs is sealed by that run."""
    await asyncio.gather(
        *(writer.write(make_entry(i, subjects=[subject_of(i)])) for i in range(300))
    )
    result = await asyncio.to_thread(run_sealer_once, db.sync_engine, signer)
    assert result.sealed == 300
    assert result.head_position == 300
    assert count(db, AuditPending) == 0
    assert count(db, AuditSeal) == 300
    assert verify_trail(db.sync_engine, signer).ok


def test_big_backlogs_are_sealed_in_several_signed_batches(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    with db.sync_engine.begin() as conn:
        for i in range(250):
            insert_entry(conn, make_entry(i))
    result = run_sealer_once(db.sync_engine, signer, batch_size=100)
    assert (result.sealed, result.checkpoints) == (250, 3)
    with db.sync_engine.connect() as conn:
        heads = conn.execute(
            select(AuditCheckpoint.position, AuditCheckpoint.record_count).order_by(
                AuditCheckpoint.position
            )
        ).all()
    assert [tuple(h) for h in heads] == [(100, 100), (200, 100), (250, 50)]
    assert verify_trail(db.sync_engine, signer).ok


def test_an_idle_sealer_writes_nothing(db: Database, signer: Es256CheckpointSigner) -> None:
    write_sealed(db, signer, 3)
    result = run_sealer_once(db.sync_engine, signer)
    assert (result.sealed, result.checkpoints) == (0, 0)
    assert count(db, AuditCheckpoint) == 1


def test_records_are_chained_in_id_order_within_a_batch(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    ids = write_sealed(db, signer, 5)
    assert positions(db) == {record_id: n for n, record_id in enumerate(ids, start=1)}


@pytest.mark.postgresql_only
def test_the_sealing_transaction_never_plans_parallel_workers(db: Database) -> None:
    with sealing_transaction(db.sync_engine) as conn:
        assert conn is not None
        setting = conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar_one()
    assert setting == "0"
    with db.sync_engine.connect() as conn:  # for this transaction only
        assert conn.execute(text("SHOW max_parallel_workers_per_gather")).scalar_one() != "0"


@pytest.mark.postgresql_only
def test_a_record_committed_after_a_larger_id_is_still_sealed(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """Ids are drawn before commit: sealing "id > last sealed" would skip id 1 forever."""
    slow = db.sync_engine.connect()
    slow_transaction = slow.begin()
    try:
        late_id = insert_entry(slow, make_entry(1, subjects=[subject_of(1)]))
        with db.sync_engine.begin() as fast:
            early_id = insert_entry(fast, make_entry(2, subjects=[subject_of(2)]))
        assert late_id < early_id
        assert run_sealer_once(db.sync_engine, signer).sealed == 1
        slow_transaction.commit()
    finally:
        slow.close()
    assert run_sealer_once(db.sync_engine, signer).sealed == 1
    assert positions(db) == {early_id: 1, late_id: 2}
    assert verify_trail(db.sync_engine, signer).ok


def test_a_smaller_id_arriving_after_sealing_is_sealed_next(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """The same late commit, on any database: id 2 sealed first, then id 1 appears."""
    with db.sync_engine.begin() as conn:
        insert_entry(conn, make_entry(2, subjects=[subject_of(2)]), record_id=2)
    assert run_sealer_once(db.sync_engine, signer).sealed == 1
    with db.sync_engine.begin() as conn:
        insert_entry(conn, make_entry(1, subjects=[subject_of(1)]), record_id=1)
    assert run_sealer_once(db.sync_engine, signer).sealed == 1
    assert positions(db) == {2: 1, 1: 2}
    report = verify_trail(db.sync_engine, signer)
    assert report.ok, report.problem
    assert report.records == 2


@pytest.mark.postgresql_only
def test_only_one_sealer_works_at_a_time(db: Database, signer: Es256CheckpointSigner) -> None:
    """Two processes sealing at once would fork the chain."""
    with db.sync_engine.begin() as conn:
        insert_entry(conn, make_entry(1))
    with sealing_transaction(db.sync_engine) as held:
        assert held is not None
        busy = run_sealer_once(db.sync_engine, signer)
    assert busy.busy
    assert busy.sealed == 0
    assert run_sealer_once(db.sync_engine, signer).sealed == 1


def test_stray_queue_entries_do_not_stop_the_sealer(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """A queue entry for an already sealed record must not make every later seal fail."""
    (record_id,) = write_sealed(db, signer, 1)
    with db.sync_engine.begin() as conn:
        conn.execute(insert(AuditPending).values(record_id=record_id))
        conn.execute(insert(AuditPending).values(record_id=10_000))
        insert_entry(conn, make_entry(2))
    assert run_sealer_once(db.sync_engine, signer).sealed == 1
    assert count(db, AuditPending) == 0
    assert verify_trail(db.sync_engine, signer).ok
