"""Invariant 2: a seal outside the walked chain is named, kept off the sealer and the purge.

``verify`` walks the seals after the purge anchor. A seal at or below it (or at position 0 or
less) is never walked: counted as "accounted for", it let a forged record pass, and a fresh,
genuine record given such a seal was dropped from the sealing queue and deleted by the next
purge as if it were old.
"""

from __future__ import annotations

import time

import pytest
from audit_factories import (
    as_app,
    as_attacker,
    insert_entry,
    make_entry,
    seal_position_check_lifted,
    subject_of,
    write_sealed,
)
from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from gateway.audit import (
    Es256CheckpointSigner,
    TrailNotIntactError,
    purge_before,
    run_sealer_once,
    verify_trail,
)
from gateway.audit.models import AuditPending, AuditRecord, AuditSeal
from gateway.database import Database, utcnow

SEALED_TABLES = ("audit_record", "audit_subject", "audit_seal", "audit_checkpoint")


def purged_at_six(db: Database, signer: Es256CheckpointSigner) -> None:
    """Six old records purged (anchor at 6), four recent ones sealed after them."""
    write_sealed(db, signer, 6, batches=2)
    time.sleep(0.01)
    cutoff = utcnow()
    time.sleep(0.01)
    write_sealed(db, signer, 4, start=100)
    assert purge_before(db.sync_engine, signer, cutoff).anchor_position == 6


def forge(conn: Connection, position: int) -> int:
    """A fabricated disclosure, out of the queue, with a seal at ``position``."""
    forged = insert_entry(
        conn,
        make_entry(666, partner_id=666, purpose="fraud.investigation", subjects=[subject_of(666)]),
    )
    conn.execute(text("DELETE FROM audit_pending WHERE record_id = :i"), {"i": forged})
    conn.execute(insert(AuditSeal).values(position=position, record_id=forged, chain_hash="0" * 64))
    return forged


@pytest.mark.parametrize("position", [1, 6, 0, -1])
def test_invariant_2_a_forged_record_sealed_below_the_purge_anchor_is_named(
    db: Database, signer: Es256CheckpointSigner, position: int
) -> None:
    """Without the check, verify counted the seal as purged history and said intact."""
    purged_at_six(db, signer)
    with as_attacker(db, *SEALED_TABLES) as conn, seal_position_check_lifted(conn):
        forged = forge(conn, position)
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None, f"forged record {forged} accepted: {report}"
    assert report.problem.code == "seal.stray"
    assert (report.problem.record_id, report.problem.position) == (forged, position)
    assert report.problem.request_id == "req-000666"


@pytest.mark.parametrize("position", [0, -1])
def test_a_seal_at_position_zero_or_below_is_named_before_any_purge(
    db: Database, signer: Es256CheckpointSigner, position: int
) -> None:
    write_sealed(db, signer, 3)
    with as_attacker(db, *SEALED_TABLES) as conn, seal_position_check_lifted(conn):
        forged = forge(conn, position)
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None
    assert (report.problem.code, report.problem.record_id) == ("seal.stray", forged)


def test_a_checkpoint_below_the_start_of_the_chain_is_named(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """The walk never reads it either: it can only have been added from outside."""
    purged_at_six(db, signer)
    with db.sync_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_checkpoint (position, head_hash, record_count, created_at, "
                "key_id, signature) VALUES (2, :h, 2, :t, 'x', 'x.y.z')"
            ),
            {"h": "f" * 64, "t": utcnow()},
        )
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None
    assert (report.problem.code, report.problem.position) == ("checkpoint.stray", 2)


@pytest.mark.parametrize("position", [1, 6, 0, -1])
def test_the_database_refuses_a_seal_at_or_below_the_last_checkpoint(
    db: Database, signer: Es256CheckpointSigner, request: pytest.FixtureRequest, position: int
) -> None:
    """The gateway's own role may insert seals: not where verify would never look."""
    purged_at_six(db, signer)
    refused = pytest.raises(DBAPIError, match=r"append-only|ck_audit_seal_position")
    with refused, as_app(db, request) as conn:
        forge(conn, position)
    with db.sync_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditRecord)).scalar() == 4


def test_a_fresh_record_given_a_stray_seal_stays_queued_and_survives_the_purge(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """The sealer dropped its queue entry as "already sealed", and the purge deleted it as old:
    a disclosure vanished from the evidence through routine retention, verify saying intact."""
    write_sealed(db, signer, 3)  # checkpoint at 3
    time.sleep(0.01)
    cutoff = utcnow()
    time.sleep(0.01)
    with db.sync_engine.begin() as conn:
        genuine = insert_entry(conn, make_entry(7, subjects=[subject_of(7)]))
    with as_attacker(db, *SEALED_TABLES) as conn, seal_position_check_lifted(conn):
        conn.execute(insert(AuditSeal).values(position=-1, record_id=genuine, chain_hash="0" * 64))
    run_sealer_once(db.sync_engine, signer)
    with db.sync_engine.connect() as conn:
        queued = conn.execute(select(AuditPending.record_id)).scalars().all()
    assert queued == [genuine], "the sealer dropped a genuine record from its queue"
    write_sealed(db, signer, 2, start=100)
    result = purge_before(db.sync_engine, signer, cutoff)
    assert (result.anchor_position, result.records_deleted) == (3, 3)
    with db.sync_engine.connect() as conn:
        kept = conn.execute(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.id == genuine)
        ).scalar_one()
    assert kept == 1, f"record {genuine}, written after the cutoff, was purged"
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None
    assert (report.problem.code, report.problem.record_id) == ("seal.stray", genuine)


def test_the_purge_refuses_a_segment_that_does_not_verify(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """Deleting a tampered segment would delete the evidence of the tampering."""
    ids = write_sealed(db, signer, 6, batches=2)
    time.sleep(0.01)
    cutoff = utcnow()
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(text("UPDATE audit_record SET partner_id = 1 WHERE id = :i"), {"i": ids[4]})
    with pytest.raises(TrailNotIntactError, match=r"record\.altered") as refused:
        purge_before(db.sync_engine, signer, cutoff)
    assert refused.value.problem.record_id == ids[4]
    with db.sync_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditRecord)).scalar() == 6


def test_a_queue_entry_planted_for_a_sealed_record_does_not_cover_a_removed_one(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """The gateway's role may add and remove queue entries: the count must not balance out."""
    (sealed,) = write_sealed(db, signer, 1)
    with db.sync_engine.begin() as conn:
        hidden = insert_entry(conn, make_entry(9))
        conn.execute(text("DELETE FROM audit_pending WHERE record_id = :i"), {"i": hidden})
        conn.execute(insert(AuditPending).values(record_id=sealed))
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None
    assert (report.problem.code, report.problem.record_id) == ("record.unqueued", hidden)
