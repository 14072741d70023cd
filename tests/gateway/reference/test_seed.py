"""Synthetic reference data: deterministic, valid identifiers, the domain's mixes, consistent."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from reference_files import (
    ACCOUNT_COLUMNS,
    CFP_COLUMNS,
    STATUS_COLUMNS,
    TURNOVER_COLUMNS,
    RunCli,
    account_rows,
    cfp_rows,
    status_rows,
    turnover_rows,
    write_csv,
    write_jsonl,
)
from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session

from gateway.database import Database, utcnow
from gateway.identifiers import parse_nir, parse_siren
from gateway.reference.ingest import ingest_file
from gateway.reference.models import (
    Account,
    CfpPayment,
    IngestionRun,
    StatusEvent,
    TurnoverDeclaration,
)
from gateway.reference.seed import (
    PASS_BY_YEAR,
    REFERENCE_DATE,
    ReferenceStoreNotEmptyError,
    SyntheticPerson,
    seed_reference_data,
    synthetic_persons,
)
from gateway.reference.status import apply_derived_status

# Timestamps of the load itself are not data.
_LOAD_COLUMNS = {"created_at", "updated_at", "recorded_at", "tx_id", "started_at", "finished_at"}
_TABLES = (Account, StatusEvent, TurnoverDeclaration, CfpPayment, IngestionRun)


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    dumped = {}
    with engine.connect() as connection:
        for model in _TABLES:
            table = cast(Table, model.__table__)
            columns = [column for column in table.columns if column.name not in _LOAD_COLUMNS]
            rows = connection.execute(select(*columns).order_by(table.c.id)).all()
            dumped[table.name] = [tuple(row) for row in rows]
    return dumped


@pytest.fixture(scope="module")
def persons() -> list[SyntheticPerson]:
    return synthetic_persons(seed=11, count=2000)


def test_same_seed_same_rows_in_two_databases(
    db: Database, make_database: Callable[[], str]
) -> None:
    """Demos, tests and benchmarks rely on naming the same people run after run."""
    other = Database(make_database())
    try:
        first = seed_reference_data(db.sync_engine, persons=200, seed=5)
        second = seed_reference_data(other.sync_engine, persons=200, seed=5)
        assert first.as_dict() | {"seconds": 0} == second.as_dict() | {"seconds": 0}
        assert first.accounts == 200
        assert _dump(db.sync_engine) == _dump(other.sync_engine)
    finally:
        other.sync_engine.dispose()
    known = synthetic_persons(seed=5, count=10)
    with db.sync_engine.connect() as connection:
        stored = connection.execute(select(Account.nir, Account.siren).order_by(Account.id))
        assert [(p.nir, p.siren) for p in known] == list(stored)[:10]


def test_the_first_persons_do_not_depend_on_how_many_follow() -> None:
    assert synthetic_persons(3, 5) == synthetic_persons(3, 40)[:5]
    assert synthetic_persons(3, 5) != synthetic_persons(4, 5)


def test_identifiers_are_valid_and_unique(persons: list[SyntheticPerson]) -> None:
    assert all(parse_nir(p.nir) == p.nir for p in persons)
    assert all(parse_siren(p.siren) == p.siren for p in persons)
    assert len({p.nir for p in persons}) == len({p.siren for p in persons}) == len(persons)
    departments = Counter(p.nir[5:7] for p in persons)
    assert departments["2A"] > 0
    assert departments["2B"] > 0


def test_the_mixes_of_the_domain_are_there(persons: list[SyntheticPerson]) -> None:
    count = len(persons)
    micro = [p for p in persons if p.regime == "micro"]
    assert 0.62 < len(micro) / count < 0.78
    assert set(Counter(p.category for p in persons)) == {"artisan", "commercant", "liberal"}
    radiated = [p for p in persons if p.is_radiated]
    assert 0.06 < len(radiated) / count < 0.14
    assert {p.status.radiation_reason for p in radiated} >= {"cessation d'activité"}
    changed = [p for p in persons if any(e.event == "regime_change" for e in p.events)]
    assert 0.02 < len(changed) / count < 0.08
    declarers = [p for p in persons if p.declarations]
    monthly = [p for p in declarers if p.periodicity == "monthly"]
    assert 0.3 < len(monthly) / len(declarers) < 0.5

    declarations = [d for p in persons for d in p.declarations]
    zero = [d for d in declarations if d.sales_bic == d.services_bic == d.services_bnc == 0]
    assert 0.02 < len(zero) / len(declarations) < 0.2
    periods = Counter((p.index, d.period) for p in persons for d in p.declarations)
    rectified = sum(1 for times in periods.values() if times > 1)
    assert 0.03 < rectified / len(periods) < 0.07
    last_day = dt.datetime.combine(REFERENCE_DATE, dt.time.max, tzinfo=dt.UTC)
    assert all(d.declared_at <= last_day for d in declarations)
    assert min(d.period_start for d in declarations) == dt.date(2024, 10, 1)


def test_cfp_follows_the_rules(persons: list[SyntheticPerson]) -> None:
    payments = [(p, c) for p in persons for c in p.cfp]
    funds = {"commercant": "AGEFICE", "artisan": "FAFCEA", "liberal": "FIF-PL"}
    micro_rates = {"commercant": "0.1", "artisan": "0.3", "liberal": "0.2"}
    for person, payment in payments:
        assert payment.fund == funds[person.category]
        assert payment.year in (2024, 2025, 2026)
        if payment.base == PASS_BY_YEAR[payment.year] and payment.rate == Decimal("0.25"):
            continue  # TI classique
        assert payment.rate == Decimal(micro_rates[person.category])
        expected = (payment.base * payment.rate / 100).quantize(Decimal("0.01"))
        assert abs(payment.amount_due - expected) <= Decimal("0.01")
    due = [c for _, c in payments if c.amount_due > 0]
    full = sum(1 for c in due if c.amount_paid == c.amount_due and c.payment_date)
    partial = sum(1 for c in due if 0 < c.amount_paid < c.amount_due)
    unpaid = sum(1 for c in due if c.amount_paid == 0 and c.payment_date is None)
    assert full + partial + unpaid == len(due)
    assert 0.8 < full / len(due) < 0.9
    assert partial > 0
    assert unpaid > 0
    assert {c.amount_due for _, c in payments if c.rate == Decimal("0.25")} == {
        Decimal("115.92"),
        Decimal("117.75"),
        Decimal("120.15"),
    }


def test_seeded_accounts_agree_with_their_events(db: Database, session: Session) -> None:
    summary = seed_reference_data(db.sync_engine, persons=300, seed=2)

    with db.sync_engine.begin() as connection:
        ids = list(connection.execute(select(Account.id)).scalars())
        assert apply_derived_status(connection, ids, utcnow()) == 0
    runs = session.scalars(select(IngestionRun).order_by(IngestionRun.id)).all()
    assert [(r.dataset, r.source_name, r.rows_added) for r in runs] == [
        ("accounts", "seed", summary.accounts),
        ("status-events", "seed", summary.status_events),
        ("turnover", "seed", summary.turnover_declarations),
        ("cfp", "seed", summary.cfp_payments),
    ]
    with pytest.raises(ReferenceStoreNotEmptyError):
        seed_reference_data(session, persons=1, seed=2)


def _business_rows(engine: Engine) -> dict[str, set[tuple[Any, ...]]]:
    """The stored facts keyed by SIREN instead of row ids, which differ between load paths."""
    with engine.connect() as connection:
        siren_of = dict(connection.execute(select(Account.id, Account.siren)).all())
        facts: dict[str, set[tuple[Any, ...]]] = {}
        for model in (Account, StatusEvent, TurnoverDeclaration, CfpPayment):
            table = cast(Table, model.__table__)
            columns = [
                column
                for column in table.columns
                if column.name not in _LOAD_COLUMNS and column.name != "id"
            ]
            rows = connection.execute(select(*columns)).mappings()
            facts[table.name] = {
                tuple(
                    siren_of[value] if name == "account_id" else value
                    for name, value in sorted(row.items())
                )
                for row in rows
            }
    return facts


def test_ingesting_the_seeded_people_as_files_gives_the_seeded_store(
    db: Database, make_database: Callable[[], str], tmp_path: Path
) -> None:
    """The two load paths agree: what seed writes directly, ingestion builds from files."""
    people = synthetic_persons(seed=8, count=150)
    seed_reference_data(db.sync_engine, persons=150, seed=8)
    loaded = Database(make_database())
    files = [
        ("accounts", write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, account_rows(people))),
        ("status-events", write_jsonl(tmp_path / "s.jsonl", status_rows(people))),
        ("turnover", write_csv(tmp_path / "t.csv", TURNOVER_COLUMNS, turnover_rows(people))),
        ("cfp", write_csv(tmp_path / "c.csv", CFP_COLUMNS, cfp_rows(people))),
    ]
    write_csv(tmp_path / "s.csv", STATUS_COLUMNS, [])  # the layout exists in CSV too
    try:
        for dataset, path in files:
            result = ingest_file(loaded.sync_engine, dataset, path, rejections_dir=tmp_path)
            assert result.rejected == 0, dataset
        assert _business_rows(loaded.sync_engine) == _business_rows(db.sync_engine)
    finally:
        loaded.sync_engine.dispose()


def test_seed_command(run_cli: RunCli) -> None:
    first = run_cli("seed", "--persons", "40", "--seed", "9", "--json")

    assert first.exit_code == 0, first.output
    counts = json.loads(first.stdout)
    assert (counts["persons"], counts["accounts"], counts["seed"]) == (40, 40, 9)
    assert counts["turnover_declarations"] > 0
    again = run_cli("seed", "--persons", "40", "--seed", "9")
    assert again.exit_code == 2
    assert "already has accounts" in again.stderr
