"""``gateway audit ...`` as operators run it, against the test database."""

from __future__ import annotations

import json

import pytest
from audit_factories import NIR, SIREN, Cli, as_attacker, insert_entry, make_entry
from sqlalchemy import func, select, text

from gateway.audit import AuditSubject, Pseudonymiser
from gateway.audit.models import AuditPending, AuditPurge
from gateway.database import Database
from gateway.settings import Settings


async def seed(db: Database, settings: Settings) -> None:
    pseudonymiser = Pseudonymiser(db, settings)
    subjects: list[AuditSubject] = [
        await pseudonymiser.subject("nir", NIR),
        await pseudonymiser.subject("siren", SIREN),
    ]
    with db.sync_engine.begin() as conn:
        for index in range(3):
            insert_entry(conn, make_entry(index, subjects=subjects))


async def test_seal_then_verify(cli: Cli, db: Database, settings: Settings) -> None:
    await seed(db, settings)
    sealed = cli("seal", "--json")
    assert sealed.exit_code == 0, sealed.output
    assert json.loads(sealed.stdout)["sealed"] == 3
    verified = cli("verify", "--json")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert report["records"] == 3
    assert "intact" in cli("verify").stdout


async def test_verify_exits_non_zero_naming_the_first_bad_record(
    cli: Cli, db: Database, settings: Settings
) -> None:
    await seed(db, settings)
    cli("seal")
    with as_attacker(db, "audit_record") as conn:
        conn.execute(
            text("UPDATE audit_record SET partner_id = 99 WHERE request_id = 'req-000001'")
        )
    result = cli("verify")
    assert result.exit_code == 1
    assert "req-000001" in result.output
    report = json.loads(cli("verify", "--json").stdout)
    assert report["problem"]["code"] == "record.altered"
    assert report["problem"]["request_id"] == "req-000001"


async def test_subject_lists_disclosures_without_echoing_the_identifier(
    cli: Cli, db: Database, settings: Settings
) -> None:
    await seed(db, settings)
    for identifier, kind in ((NIR, "nir"), (f"{SIREN[:3]} {SIREN[3:6]} {SIREN[6:]}", "siren")):
        result = cli("subject", identifier, "--json")
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert body["kind"] == kind
        assert [entry["request_id"] for entry in body["entries"]] == [
            "req-000000",
            "req-000001",
            "req-000002",
        ]
        assert body["entries"][0]["purpose"] == "rsa.instruction"
        assert identifier not in result.output
    table = cli("subject", NIR)
    assert "3 record(s) name this NIR" in table.stdout
    assert NIR not in table.stdout


async def test_subject_reads_the_identifier_from_standard_input_when_left_out(
    cli: Cli, db: Database, settings: Settings
) -> None:
    """So that a NIR need not stand on a command line: shell history, the process list."""
    await seed(db, settings)
    result = cli("subject", "--json", stdin=NIR + "\n")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["entries"]) == 3
    assert NIR not in result.output


def test_subject_refuses_an_invalid_identifier_without_repeating_it(cli: Cli) -> None:
    bad = NIR[:-2] + "00"
    result = cli("subject", bad)
    assert result.exit_code == 2
    assert "nir.bad_key" in result.output
    assert bad not in result.output


async def test_rotation_keeps_older_records_searchable(
    cli: Cli, db: Database, settings: Settings
) -> None:
    await seed(db, settings)
    rotated = cli("rotate-pseudonym-key", "--json")
    assert rotated.exit_code == 0
    await seed(db, settings)  # a new Pseudonymiser: the new key
    body = json.loads(cli("subject", NIR, "--json").stdout)
    assert len(body["entries"]) == 6
    assert len({entry["key_id"] for entry in body["entries"]}) == 2
    assert json.loads(rotated.stdout)["key_id"] in {entry["key_id"] for entry in body["entries"]}


async def test_purge_defaults_to_the_retention_period(
    cli: Cli, db: Database, settings: Settings
) -> None:
    await seed(db, settings)
    cli("seal")
    result = cli("purge", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records_deleted"] == 0  # all younger than 365 days
    assert cli("purge", "--before", "2999-01-01").exit_code == 2
    with db.sync_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditPurge)).scalar() == 0


def test_grant_app_role_prints_the_grants(cli: Cli) -> None:
    result = cli("grant-app-role", "gateway_app", "--print")
    assert result.exit_code == 0
    assert 'GRANT SELECT, INSERT ON audit_record TO "gateway_app"' in result.stdout
    assert "UPDATE" not in result.stdout.replace("REVOKE ALL", "")


def test_grant_app_role_needs_postgresql(cli: Cli, db: Database) -> None:
    if db.sync_engine.dialect.name == "postgresql":
        pytest.skip("SQLite behaviour")
    assert cli("grant-app-role", "gateway_app").exit_code == 2


@pytest.mark.postgresql_only
def test_grant_app_role_runs_the_grants(cli: Cli, db: Database, app_role: str) -> None:
    result = cli("grant-app-role", app_role, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["executed"] is True
    with db.sync_engine.connect() as conn:
        allowed = conn.execute(
            text(
                "SELECT has_table_privilege(:r, 'audit_record', 'INSERT'), "
                "has_table_privilege(:r, 'audit_record', 'UPDATE'), "
                "has_table_privilege(:r, 'audit_record', 'DELETE')"
            ),
            {"r": app_role},
        ).one()
    assert tuple(allowed) == (True, False, False)


def test_seal_with_nothing_to_do(cli: Cli, db: Database) -> None:
    with db.sync_engine.begin() as conn:
        insert_entry(conn, make_entry(1))
    assert "Sealed 1 record" in cli("seal").stdout
    with db.sync_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditPending)).scalar() == 0
    assert "Sealed 0 record" in cli("seal").stdout
