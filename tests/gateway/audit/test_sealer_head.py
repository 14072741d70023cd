"""Invariant 2: the sealer extends only a head it can vouch for, and otherwise fails closed.

The gateway's role may insert checkpoints and seals. The sealer used to take the highest
checkpoint at face value: one row planted ahead had every genuine record chained after a
forged hash, breaking the trail for good (and masking later tampering). Now it seals nothing,
logs an error and keeps its loop running; the records stay queued and ``verify`` names the
problem.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from audit_factories import (
    Cli,
    as_app,
    as_attacker,
    insert_entry,
    make_entry,
    subject_of,
    write_sealed,
)
from sqlalchemy import func, select, text
from structlog.testing import CapturingLogger

from gateway.audit import Es256CheckpointSigner, purge_before, run_sealer_once, verify_trail
from gateway.audit import sealer as sealer_module
from gateway.audit.models import AuditCheckpoint, AuditPending, AuditSeal
from gateway.audit.sealer import seal_until_stopped
from gateway.database import Database, utcnow


@pytest.fixture
def sealer_log(monkeypatch: pytest.MonkeyPatch) -> CapturingLogger:
    """The sealer's log lines (structlog caches loggers, so its module logger is replaced)."""
    logger = CapturingLogger()
    monkeypatch.setattr(sealer_module, "log", logger)
    return logger


def queued_genuine_record(db: Database) -> int:
    with db.sync_engine.begin() as conn:
        return insert_entry(conn, make_entry(11, subjects=[subject_of(11)]))


def assert_refused(
    db: Database, signer: Es256CheckpointSigner, record_id: int, reason: str
) -> None:
    result = run_sealer_once(db.sync_engine, signer)
    assert (result.sealed, result.refused) == (0, reason)
    with db.sync_engine.connect() as conn:
        sealed = conn.execute(
            select(AuditSeal.position).where(AuditSeal.record_id == record_id)
        ).first()
        queued = conn.execute(
            select(func.count())
            .select_from(AuditPending)
            .where(AuditPending.record_id == record_id)
        ).scalar_one()
    assert sealed is None, f"record sealed at {sealed}, after a head nobody vouched for"
    assert queued == 1


def test_invariant_2_the_sealer_does_not_build_on_a_checkpoint_planted_ahead(
    db: Database,
    signer: Es256CheckpointSigner,
    request: pytest.FixtureRequest,
    sealer_log: CapturingLogger,
) -> None:
    write_sealed(db, signer, 10, batches=2)
    with as_app(db, request) as conn:  # INSERT on audit_checkpoint is granted to the app role
        conn.execute(
            text(
                "INSERT INTO audit_checkpoint (position, head_hash, record_count, created_at, "
                "key_id, signature) VALUES (1000, :h, 1, :t, 'x', 'x.y.z')"
            ),
            {"h": "f" * 64, "t": utcnow()},
        )
    genuine = queued_genuine_record(db)
    assert_refused(db, signer, genuine, "head.mismatch")
    refusals = [call for call in sealer_log.calls if call.args == ("audit_seal_refused",)]
    assert [call.method_name for call in refusals] == ["error"]
    assert refusals[0].kwargs["reason"] == "head.mismatch"


def test_the_sealer_does_not_build_on_a_seal_planted_ahead(
    db: Database, signer: Es256CheckpointSigner, request: pytest.FixtureRequest
) -> None:
    """Allowed by the database (beyond the last checkpoint), refused by the sealer."""
    write_sealed(db, signer, 10, batches=2)
    with db.sync_engine.begin() as conn:
        planted = insert_entry(conn, make_entry(500))
        conn.execute(text("DELETE FROM audit_pending WHERE record_id = :i"), {"i": planted})
    with as_app(db, request) as conn:
        conn.execute(
            text("INSERT INTO audit_seal (position, record_id, chain_hash) VALUES (20, :i, :h)"),
            {"i": planted, "h": "f" * 64},
        )
    assert_refused(db, signer, queued_genuine_record(db), "head.mismatch")


def test_the_sealer_does_not_build_on_a_checkpoint_whose_signature_fails(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    write_sealed(db, signer, 10, batches=2)
    forger = Es256CheckpointSigner.generate()
    with as_attacker(db, "audit_checkpoint") as conn:
        conn.execute(
            text("UPDATE audit_checkpoint SET signature = :s WHERE position = 10"),
            {"s": forger.sign(b"{}")},
        )
    assert_refused(db, signer, queued_genuine_record(db), "checkpoint.bad_signature")


def test_a_refusal_does_not_stop_the_sealing_loop(
    db: Database, signer: Es256CheckpointSigner, sealer_log: CapturingLogger
) -> None:
    write_sealed(db, signer, 5)
    with as_attacker(db, "audit_checkpoint") as conn:
        conn.execute(text("DELETE FROM audit_checkpoint"))
    queued_genuine_record(db)
    stop = threading.Event()
    stop.set()  # one last run, then return: it must return, not raise
    seal_until_stopped(db.sync_engine, signer, 0.01, stop)
    events = [(call.method_name, call.args[0]) for call in sealer_log.calls]
    assert ("error", "audit_seal_refused") in events
    assert ("error", "audit_seal_failed") not in events


def test_the_sealer_continues_after_a_purge_from_the_anchor_checkpoint(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """After a purge of everything sealed, the head is the kept anchor checkpoint."""
    write_sealed(db, signer, 4)
    assert purge_before(db.sync_engine, signer, utcnow()).anchor_position == 4
    genuine = queued_genuine_record(db)
    assert run_sealer_once(db.sync_engine, signer).sealed == 1
    with db.sync_engine.connect() as conn:
        position = conn.execute(
            select(AuditSeal.position).where(AuditSeal.record_id == genuine)
        ).scalar_one()
    assert position == 5
    assert verify_trail(db.sync_engine, signer).ok


def test_checkpoint_dates_never_go_backwards_even_if_the_clock_does(
    db: Database, signer: Es256CheckpointSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several servers take turns with the sealing lock, and their clocks differ a little."""
    write_sealed(db, signer, 3)
    behind = utcnow() - dt.timedelta(seconds=30)
    monkeypatch.setattr(sealer_module, "utcnow", lambda: behind)
    write_sealed(db, signer, 3, start=3)
    with db.sync_engine.connect() as conn:
        dates = (
            conn.execute(select(AuditCheckpoint.created_at).order_by(AuditCheckpoint.position))
            .scalars()
            .all()
        )
    assert dates[0] <= dates[1]
    assert verify_trail(db.sync_engine, signer).ok


def test_seal_on_the_command_line_exits_non_zero_when_refused(cli: Cli, db: Database) -> None:
    cli("seal")
    with db.sync_engine.begin() as conn:
        insert_entry(conn, make_entry(1))
    assert cli("seal").exit_code == 0
    with as_attacker(db, "audit_checkpoint") as conn:
        conn.execute(text("DELETE FROM audit_checkpoint"))
    with db.sync_engine.begin() as conn:
        insert_entry(conn, make_entry(2))
    result = cli("seal")
    assert result.exit_code == 1
    assert "refused" in result.output
