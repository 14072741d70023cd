"""Invariant 2 and 5: a malformed row makes ``verify`` name it, never crash (SQLite).

SQLite keeps any value in any column. A timestamp that is no timestamp, or a binary value,
used to raise out of ``verify``: a traceback on the command line, a 500 from the console's
verify button, and a verification that named nothing.
"""

from __future__ import annotations

import json

import pytest
from audit_factories import Cli, as_attacker, write_sealed
from sqlalchemy import text

from gateway.audit import verify_trail
from gateway.audit.signing import gateway_checkpoint_signer
from gateway.database import Database
from gateway.settings import Settings

SEALED_TABLES = ("audit_record", "audit_subject", "audit_seal", "audit_checkpoint")

MALFORMED = {
    "record date": (
        "UPDATE audit_record SET occurred_at = 'yesterday' WHERE id = :id",
        "record.malformed",
    ),
    "record date of another type": (
        "UPDATE audit_record SET occurred_at = X'00ff' WHERE id = :id",
        "record.malformed",
    ),
    "subject date": (
        "UPDATE audit_subject SET occurred_at = 'n/a' WHERE record_id = :id",
        "record.malformed",
    ),
    "binary column": (
        "UPDATE audit_record SET case_reference = X'00ff' WHERE id = :id",
        "record.malformed",
    ),
    "checkpoint date": (
        "UPDATE audit_checkpoint SET created_at = 'soon' WHERE position = 5",
        "checkpoint.malformed",
    ),
    "checkpoint head": (
        "UPDATE audit_checkpoint SET head_hash = X'00ff' WHERE position = 5",
        "checkpoint.malformed",
    ),
}


@pytest.fixture
def ids(db: Database, settings: Settings) -> list[int]:
    if db.sync_engine.dialect.name != "sqlite":
        pytest.skip("typed columns on PostgreSQL refuse these values")
    return write_sealed(db, gateway_checkpoint_signer(settings, db.sync_engine), 10, batches=2)


@pytest.mark.parametrize(("statement", "code"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_verify_names_a_malformed_row_instead_of_crashing(
    db: Database, settings: Settings, ids: list[int], statement: str, code: str
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(text(statement), {"id": ids[3]})
    report = verify_trail(db.sync_engine, gateway_checkpoint_signer(settings, db.sync_engine))
    assert report.problem is not None
    assert report.problem.code == code
    if code == "record.malformed":
        assert (report.problem.record_id, report.problem.position) == (ids[3], 4)
    else:
        assert report.problem.position == 5


def test_a_malformed_purge_row_is_named(db: Database, settings: Settings, ids: list[int]) -> None:
    """Anyone may insert into audit_purge on SQLite: its dates are read raw too."""
    with db.sync_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_purge (purged_at, cutoff_at, anchor_position, head_hash, "
                "records_deleted, key_id, signature) VALUES ('never', 'never', 3, :h, 3, 'k', 's')"
            ),
            {"h": "0" * 64},
        )
    report = verify_trail(db.sync_engine, gateway_checkpoint_signer(settings, db.sync_engine))
    assert report.problem is not None
    assert (report.problem.code, report.problem.position) == ("purge.malformed", 3)


def test_the_command_line_names_the_malformed_record_without_a_traceback(
    db: Database, ids: list[int], cli: Cli
) -> None:
    with as_attacker(db, *SEALED_TABLES) as conn:
        conn.execute(
            text("UPDATE audit_record SET occurred_at = 'yesterday' WHERE id = :id"),
            {"id": ids[3]},
        )
    result = cli("verify", "--json")
    assert result.exit_code == 1
    problem = json.loads(result.stdout)["problem"]
    assert (problem["code"], problem["record_id"]) == ("record.malformed", ids[3])
    plain = cli("verify")
    assert plain.exit_code == 1
    assert "req-000003" in plain.output
    assert "Traceback" not in plain.output
