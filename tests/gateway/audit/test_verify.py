"""Invariant 2: verify detects any update, deletion, insertion or reordering and names the record.

Each attack is made the way someone holding the database superuser would: straight into the
tables, with the append-only triggers out of the way (``as_attacker``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from audit_factories import (
    as_attacker,
    insert_entry,
    make_entry,
    record_values,
    relink,
    subject_of,
    subject_values,
    write_sealed,
)
from sqlalchemy import Connection, insert, text

from gateway.audit import (
    Es256CheckpointSigner,
    VerificationReport,
    run_sealer_once,
    verify_trail,
)
from gateway.audit.chain import checkpoint_payload
from gateway.audit.models import AuditSeal
from gateway.database import Database, utcnow

SEALED_TABLES = ("audit_record", "audit_subject", "audit_seal", "audit_checkpoint")


@pytest.fixture
def ids(db: Database, signer: Es256CheckpointSigner) -> list[int]:
    """Ten sealed records (one subject each) under two checkpoints, at positions 5 and 10."""
    return write_sealed(db, signer, 10, batches=2)


def verify(db: Database, signer: Es256CheckpointSigner) -> VerificationReport:
    return verify_trail(db.sync_engine, signer, chunk_size=3)  # small chunks cross boundaries


def seal_hash(conn: Connection, position: int) -> str:
    return str(
        conn.execute(
            text("SELECT chain_hash FROM audit_seal WHERE position = :p"), {"p": position}
        ).scalar_one()
    )


def assert_names(report: VerificationReport, code: str, record_id: int | None) -> None:
    assert report.problem is not None, "verify missed the tampering"
    assert report.problem.code == code, report.problem
    assert report.problem.record_id == record_id, report.problem


def test_an_untouched_trail_verifies(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with db.sync_engine.begin() as conn:
        insert_entry(conn, make_entry(99))  # committed, not sealed yet: fine
    report = verify(db, signer)
    assert report.ok, report.problem
    assert (report.records, report.checkpoints, report.head_position) == (10, 2, 10)
    assert report.pending == 1


def test_invariant_2_an_updated_record_is_named(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(
            text("UPDATE audit_record SET purpose = 'fraud.investigation' WHERE id = :id"),
            {"id": ids[3]},
        )
    report = verify(db, signer)
    assert_names(report, "record.altered", ids[3])
    assert report.problem is not None
    assert report.problem.request_id == "req-000003"
    assert report.problem.position == 4


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_subject SET pseudonym = :other WHERE record_id = :id",
        "UPDATE audit_subject SET occurred_at = occurred_at WHERE record_id = -1",
        "DELETE FROM audit_subject WHERE record_id = :id",
        "INSERT INTO audit_subject (record_id, subject_kind, pseudonym, key_id, occurred_at) "
        "SELECT record_id, 'siren', :other, key_id, occurred_at FROM audit_subject "
        "WHERE record_id = :id",
    ],
)
def test_a_changed_removed_or_added_subject_is_caught_on_its_record(
    db: Database, signer: Es256CheckpointSigner, ids: list[int], statement: str
) -> None:
    """Hiding that a person's data left (or pinning it on someone else) breaks the chain."""
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(text(statement), {"id": ids[6], "other": "b" * 64})
    report = verify(db, signer)
    if "-1" in statement:  # a no-op control: the test itself must not break the chain
        assert report.ok, report.problem
    else:
        assert_names(report, "record.altered", ids[6])


def test_invariant_2_a_deleted_record_is_named(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(text("DELETE FROM audit_subject WHERE record_id = :id"), {"id": ids[2]})
        conn.execute(text("DELETE FROM audit_record WHERE id = :id"), {"id": ids[2]})
    assert_names(verify(db, signer), "record.missing", ids[2])


def test_a_record_deleted_with_its_seal_is_found_at_the_gap(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(text("DELETE FROM audit_seal WHERE record_id = :id"), {"id": ids[2]})
        conn.execute(text("DELETE FROM audit_subject WHERE record_id = :id"), {"id": ids[2]})
        conn.execute(text("DELETE FROM audit_record WHERE id = :id"), {"id": ids[2]})
    report = verify(db, signer)
    assert_names(report, "record.missing", ids[3])
    assert report.problem is not None
    assert "positions 3 to 3" in report.problem.message


def test_the_newest_records_deleted_under_their_checkpoint_are_caught(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        for record_id in ids[8:]:
            conn.execute(text("DELETE FROM audit_seal WHERE record_id = :id"), {"id": record_id})
    report = verify(db, signer)
    assert report.problem is not None
    assert report.problem.code == "record.missing"
    assert report.problem.position == 9


def forge_record(conn: Connection, index: int) -> int:
    entry = make_entry(index, partner_id=666, subjects=[subject_of(index)])
    record_id = insert_entry(conn, entry)
    conn.execute(text("DELETE FROM audit_pending WHERE record_id = :id"), {"id": record_id})
    return record_id


def test_invariant_2_a_record_inserted_into_the_chain_is_named(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    """The forger even computes a correct link for the record slipped in at position 4."""
    with as_attacker(db, *SEALED_TABLES) as conn:
        forged = forge_record(conn, 500)
        # Make room: positions 4.. move up by one (in two steps, for the primary key).
        conn.execute(text("UPDATE audit_seal SET position = position + 1000 WHERE position >= 4"))
        conn.execute(text("UPDATE audit_seal SET position = position - 999 WHERE position > 1000"))
        chain_hash = relink(
            conn, seal_hash(conn, 3), 4, record_values(conn, forged), subject_values(conn, forged)
        )
        conn.execute(insert(AuditSeal).values(position=4, record_id=forged, chain_hash=chain_hash))
    report = verify(db, signer)
    assert_names(report, "record.inserted", forged)
    assert report.problem is not None
    assert report.problem.request_id == "req-000500"


def test_a_record_appended_after_the_last_checkpoint_is_named(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        forged = forge_record(conn, 501)
        chain_hash = relink(
            conn, seal_hash(conn, 10), 11, record_values(conn, forged), subject_values(conn, forged)
        )
        conn.execute(insert(AuditSeal).values(position=11, record_id=forged, chain_hash=chain_hash))
    assert_names(verify(db, signer), "record.unsigned", forged)


def test_a_backdated_record_slipped_into_the_queue_is_named(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    """No trigger to bypass: INSERT is allowed. The sealer seals it; its date gives it away."""
    with db.sync_engine.begin() as conn:
        forged = insert_entry(conn, make_entry(502, occurred_at=utcnow() - dt.timedelta(days=30)))
    run_sealer_once(db.sync_engine, signer)
    assert_names(verify(db, signer), "record.backdated", forged)


def test_invariant_2_two_swapped_records_are_caught(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(
            text("UPDATE audit_seal SET record_id = -1 WHERE record_id = :id"), {"id": ids[2]}
        )
        conn.execute(
            text("UPDATE audit_seal SET record_id = :a WHERE record_id = :b"),
            {"a": ids[2], "b": ids[6]},
        )
        conn.execute(
            text("UPDATE audit_seal SET record_id = :b WHERE record_id = -1"), {"b": ids[6]}
        )
    # The record now sealed at position 3 is the first that does not belong there.
    assert_names(verify(db, signer), "record.altered", ids[6])


def test_two_swapped_record_contents_are_caught(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(
            text(
                "UPDATE audit_record SET request_id = CASE id WHEN :a THEN :rb ELSE :ra END "
                "WHERE id IN (:a, :b)"
            ),
            {"a": ids[1], "b": ids[7], "ra": "req-000001", "rb": "req-000007"},
        )
    assert_names(verify(db, signer), "record.altered", ids[1])


def test_a_chain_rewritten_end_to_end_is_caught_by_the_signed_checkpoint(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    """The forger alters a record and recomputes every later link; only signatures remain."""
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(text("UPDATE audit_record SET partner_id = 1 WHERE id = :id"), {"id": ids[3]})
        previous = seal_hash(conn, 3)
        for position in range(4, 11):
            record_id = conn.execute(
                text("SELECT record_id FROM audit_seal WHERE position = :p"), {"p": position}
            ).scalar_one()
            previous = relink(
                conn,
                previous,
                position,
                record_values(conn, record_id),
                subject_values(conn, record_id),
            )
            conn.execute(
                text("UPDATE audit_seal SET chain_hash = :h WHERE position = :p"),
                {"h": previous, "p": position},
            )
    report = verify(db, signer)
    assert report.problem is not None
    assert report.problem.code == "checkpoint.mismatch"
    assert report.problem.position == 5
    assert "between positions 1 and 5" in report.problem.message


def test_a_forged_checkpoint_signature_is_caught(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    forger = Es256CheckpointSigner.generate()
    with as_attacker(db, *SEALED_TABLES) as conn:
        row = conn.execute(text("SELECT * FROM audit_checkpoint WHERE position = 5")).one()
        created_at = row.created_at
        if isinstance(created_at, str):
            created_at = dt.datetime.fromisoformat(created_at)
        payload = checkpoint_payload(5, row.head_hash, row.record_count, created_at)
        conn.execute(
            text("UPDATE audit_checkpoint SET signature = :s, key_id = :k WHERE position = 5"),
            {"s": forger.sign(payload), "k": forger.key_id},
        )
    report = verify(db, signer)
    assert report.problem is not None
    assert report.problem.code == "checkpoint.bad_signature"
    assert report.problem.position == 5


def test_a_checkpoint_changed_under_its_signature_is_caught(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(text("UPDATE audit_checkpoint SET record_count = 4 WHERE position = 5"))
    report = verify(db, signer)
    assert report.problem is not None
    assert report.problem.code == "checkpoint.mismatch"


def test_a_record_taken_out_of_the_sealing_queue_is_named(
    db: Database, signer: Es256CheckpointSigner, ids: list[int]
) -> None:
    """The queue is no evidence, but emptying it must not hide a record from sealing."""
    with db.sync_engine.begin() as conn:
        hidden = insert_entry(conn, make_entry(503))
        conn.execute(text("DELETE FROM audit_pending WHERE record_id = :id"), {"id": hidden})
    report = verify(db, signer)
    assert_names(report, "record.unqueued", hidden)
    assert report.problem is not None
    assert report.problem.request_id == "req-000503"
