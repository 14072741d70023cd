"""Invariant 2 after a key rotation: a retired audit key signs nothing that came after it.

Audit keys are rotated when one may have leaked. Whoever holds the retired key must not be
able to rewrite what was sealed after the rotation and re-sign its checkpoints with it: not
with the checkpoint's own date, not backdated to before the rotation, and not by pointing the
``key_id`` column elsewhere.
"""

from __future__ import annotations

import datetime as dt

import pytest
from audit_factories import as_attacker, rewrite_and_resign, write_sealed
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gateway.audit import Es256CheckpointSigner, verify_trail
from gateway.audit.models import AuditCheckpoint
from gateway.audit.signing import (
    KeyStoreCheckpointSigner,
    gateway_checkpoint_signer,
)
from gateway.database import Database
from gateway.keys import ActiveKey, KeyStore, KeyUse
from gateway.settings import Settings

SEALED = ("audit_record", "audit_subject", "audit_seal", "audit_checkpoint")


def rotated(db: Database, settings: Settings) -> tuple[ActiveKey, dt.datetime]:
    """Five records sealed under a first key, which is then rotated out; five more under the
    next. Returns the first key (the one that leaks) and when it was retired."""
    write_sealed(db, gateway_checkpoint_signer(settings, db.sync_engine), 5)
    store = KeyStore(settings)
    with Session(db.sync_engine) as session:
        old = store.current(session, KeyUse.AUDIT)
        store.rotate(session, KeyUse.AUDIT)
        session.commit()
    new_signer = gateway_checkpoint_signer(settings, db.sync_engine)
    assert new_signer.key_id != old.kid
    write_sealed(db, new_signer, 5, start=5)
    with Session(db.sync_engine) as session:
        (retired_at,) = [
            key.retired_at for key in store.trusted(session, KeyUse.AUDIT) if key.kid == old.kid
        ]
    assert retired_at is not None
    return old, retired_at


def test_invariant_2_a_retired_key_cannot_resign_what_was_sealed_after_its_retirement(
    db: Database, settings: Settings
) -> None:
    old, _ = rotated(db, settings)
    with as_attacker(db, *SEALED) as conn:
        rewrite_and_resign(conn, 7, 10, lambda payload: (old.kid, old.sign_compact(payload)))
    # The checkpoints after the rotation are milliseconds younger than it: without a grace
    # for signers' key caches, the test needs no wait for them to be dated beyond it.
    report = verify_trail(
        db.sync_engine,
        gateway_checkpoint_signer(settings, db.sync_engine),
        retired_key_grace=dt.timedelta(0),
    )
    assert report.problem is not None, "a checkpoint dated after its key's retirement verifies"
    assert (report.problem.code, report.problem.position) == ("checkpoint.retired_key", 10)


def test_a_checkpoint_backdated_to_before_the_rotation_is_caught_by_its_records(
    db: Database, settings: Settings
) -> None:
    """Dating the re-signed checkpoint back before the rotation passes the key's retirement
    (and the dates' order, given the previous checkpoint's date), but its records were
    written later than the checkpoint now claims."""
    old, _ = rotated(db, settings)
    with db.sync_engine.connect() as conn:
        before_rotation = conn.execute(
            select(AuditCheckpoint.created_at).where(AuditCheckpoint.position == 5)
        ).scalar_one()
        later = (
            conn.execute(text("SELECT record_id FROM audit_seal WHERE position > 5"))
            .scalars()
            .all()
        )
    with as_attacker(db, *SEALED) as conn:
        rewrite_and_resign(
            conn,
            7,
            10,
            lambda payload: (old.kid, old.sign_compact(payload)),
            dated=before_rotation,
        )
    # No margin for clocks here: the records are milliseconds younger than the checkpoint.
    report = verify_trail(
        db.sync_engine,
        gateway_checkpoint_signer(settings, db.sync_engine),
        backdating_margin=dt.timedelta(0),
        retired_key_grace=dt.timedelta(0),
    )
    assert report.problem is not None
    assert report.problem.code == "checkpoint.backdated"
    assert report.problem.record_id in later


def test_checkpoint_dates_must_not_go_backwards(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """Even signed by a good key: dates only move forward along the chain."""
    write_sealed(db, signer, 10, batches=2)
    with db.sync_engine.connect() as conn:
        first = conn.execute(
            select(AuditCheckpoint.created_at).where(AuditCheckpoint.position == 5)
        ).scalar_one()
    with as_attacker(db, *SEALED) as conn:
        rewrite_and_resign(
            conn,
            10,
            10,
            lambda payload: (signer.key_id, signer.sign(payload)),
            dated=first - dt.timedelta(seconds=1),
        )
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None
    assert (report.problem.code, report.problem.position) == ("checkpoint.out_of_order", 10)


def test_the_key_id_column_must_name_the_key_that_signed(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    write_sealed(db, signer, 10, batches=2)
    with as_attacker(db, *SEALED) as conn:
        conn.execute(text("UPDATE audit_checkpoint SET key_id = 'another' WHERE position = 5"))
    report = verify_trail(db.sync_engine, signer)
    assert report.problem is not None
    assert (report.problem.code, report.problem.position) == ("checkpoint.key_mismatch", 5)


def test_a_sealer_still_holding_the_retired_key_for_a_while_is_not_a_forgery(
    db: Database, settings: Settings
) -> None:
    """A sealer's signer keeps its key up to a minute: within the grace, no false alarm."""
    cached = KeyStoreCheckpointSigner(KeyStore(settings), db.sync_engine, refresh_seconds=3600)
    write_sealed(db, cached, 5)
    store = KeyStore(settings)
    with Session(db.sync_engine) as session:
        store.rotate(session, KeyUse.AUDIT)
        session.commit()
    write_sealed(db, cached, 5, start=5)  # signed with the retired key, right after rotation
    report = verify_trail(db.sync_engine, gateway_checkpoint_signer(settings, db.sync_engine))
    assert report.ok, report.problem


@pytest.mark.parametrize("use", [KeyUse.TOKEN, KeyUse.CONSENT])
def test_a_key_of_another_use_never_signs_a_checkpoint(
    db: Database, settings: Settings, use: KeyUse
) -> None:
    write_sealed(db, gateway_checkpoint_signer(settings, db.sync_engine), 5)
    with Session(db.sync_engine) as session:
        other = KeyStore(settings).current(session, use)
    with as_attacker(db, *SEALED) as conn:
        rewrite_and_resign(conn, 3, 5, lambda payload: (other.kid, other.sign_compact(payload)))
    report = verify_trail(db.sync_engine, gateway_checkpoint_signer(settings, db.sync_engine))
    assert report.problem is not None
    assert report.problem.code == "checkpoint.bad_signature"
