"""Invariant 2: a chain cut back to an earlier checkpoint is caught against a witness.

Deleting the last segment together with its checkpoint (or putting an old backup back) leaves
a chain that is intact up to an earlier checkpoint: nothing inside the database can tell. The
sealer logs each checkpoint's position and chain hash, a witness kept outside the database,
and ``verify --anchor POSITION:CHAIN_HASH`` checks the chain still holds it.
"""

from __future__ import annotations

import json
import time

import pytest
from audit_factories import Cli, as_attacker, rewrite_and_resign, write_sealed
from sqlalchemy import select, text
from structlog.testing import CapturingLogger

from gateway.audit import Es256CheckpointSigner, purge_before, verify_trail
from gateway.audit import sealer as sealer_module
from gateway.audit.models import AuditCheckpoint
from gateway.audit.signing import gateway_checkpoint_signer
from gateway.database import Database, utcnow
from gateway.settings import Settings

SEALED = ("audit_record", "audit_subject", "audit_seal", "audit_checkpoint")


def head_at(db: Database, position: int) -> str:
    with db.sync_engine.connect() as conn:
        return str(
            conn.execute(
                select(AuditCheckpoint.head_hash).where(AuditCheckpoint.position == position)
            ).scalar_one()
        )


def cut_back_to_five(db: Database, ids: list[int]) -> None:
    """The last segment (positions 6 to 10) removed with its checkpoint."""
    with as_attacker(db, *SEALED) as conn:
        for record_id in ids[5:]:
            conn.execute(text("DELETE FROM audit_subject WHERE record_id = :i"), {"i": record_id})
            conn.execute(text("DELETE FROM audit_seal WHERE record_id = :i"), {"i": record_id})
            conn.execute(text("DELETE FROM audit_record WHERE id = :i"), {"i": record_id})
        conn.execute(text("DELETE FROM audit_checkpoint WHERE position = 10"))


def test_the_sealer_logs_each_checkpoint_as_a_witness(
    db: Database, signer: Es256CheckpointSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At info level (shipped with the logs), position and hash only: no personal data."""
    logger = CapturingLogger()
    monkeypatch.setattr(sealer_module, "log", logger)
    write_sealed(db, signer, 10, batches=2)
    witnessed = [call for call in logger.calls if call.args == ("audit_sealed",)]
    assert [call.method_name for call in witnessed] == ["info", "info"]
    assert [(call.kwargs["head_position"], call.kwargs["head_hash"]) for call in witnessed] == [
        (5, head_at(db, 5)),
        (10, head_at(db, 10)),
    ]
    assert set(witnessed[0].kwargs) == {"records", "head_position", "head_hash"}


def test_invariant_2_the_last_segment_removed_with_its_checkpoint_is_caught_by_the_witness(
    db: Database, settings: Settings
) -> None:
    signer = gateway_checkpoint_signer(settings, db.sync_engine)
    ids = write_sealed(db, signer, 10, batches=2)
    witness = (10, head_at(db, 10))
    cut_back_to_five(db, ids)
    report = verify_trail(db.sync_engine, signer, witness=witness)
    assert report.problem is not None, (
        f"five sealed, signed disclosures erased; verify says intact up to {report.head_position}"
    )
    assert (report.problem.code, report.problem.position) == ("witness.missing", 6)


def test_a_chain_rewritten_and_resigned_since_the_witness_is_caught(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """Whoever held the key re-signed the tail: only the witness still knows the old hash."""
    write_sealed(db, signer, 10, batches=2)
    witness = (10, head_at(db, 10))
    with as_attacker(db, *SEALED) as conn:
        rewrite_and_resign(conn, 7, 10, lambda payload: (signer.key_id, signer.sign(payload)))
    assert verify_trail(db.sync_engine, signer).ok  # the limit of what a chain shows alone
    report = verify_trail(db.sync_engine, signer, witness=witness)
    assert report.problem is not None
    assert (report.problem.code, report.problem.position) == ("witness.mismatch", 10)


def test_a_witness_at_or_below_a_signed_purge(db: Database, signer: Es256CheckpointSigner) -> None:
    """Retention removes witnessed positions legitimately; the anchor itself is still checked."""
    write_sealed(db, signer, 6, batches=2)
    time.sleep(0.01)
    cutoff = utcnow()
    time.sleep(0.01)
    write_sealed(db, signer, 2, start=100)
    old_witness = (3, head_at(db, 3))
    anchor_witness = (6, head_at(db, 6))
    assert purge_before(db.sync_engine, signer, cutoff).anchor_position == 6
    assert verify_trail(db.sync_engine, signer, witness=old_witness).ok
    assert verify_trail(db.sync_engine, signer, witness=anchor_witness).ok
    report = verify_trail(db.sync_engine, signer, witness=(6, "0" * 64))
    assert report.problem is not None
    assert report.problem.code == "witness.mismatch"


def test_verify_takes_a_witness_on_the_command_line(
    cli: Cli, db: Database, settings: Settings
) -> None:
    ids = write_sealed(db, gateway_checkpoint_signer(settings, db.sync_engine), 10, batches=2)
    anchor = f"10:{head_at(db, 10)}"
    assert cli("verify", "--anchor", anchor).exit_code == 0
    cut_back_to_five(db, ids)
    assert cli("verify").exit_code == 0  # unchanged without a witness
    result = cli("verify", "--anchor", anchor, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problem"]["code"] == "witness.missing"
    assert "witnessed position 10" in cli("verify", "--anchor", anchor).output


@pytest.mark.parametrize("anchor", ["10", "ten:abc", f"0:{'a' * 64}", f"10:{'g' * 64}", ""])
def test_a_malformed_anchor_is_refused_without_a_traceback(cli: Cli, anchor: str) -> None:
    result = cli("verify", "--anchor", anchor)
    assert result.exit_code == 2
    assert "POSITION:CHAIN_HASH" in result.output
    assert "Traceback" not in result.output
