"""Status derivation and status-events ingestion: the account follows its events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from factories import create_account, create_status_event, new_siren
from reference_files import STATUS_COLUMNS, read_report, write_csv, write_jsonl
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.database import Database, utcnow
from gateway.reference.ingest import ingest_file
from gateway.reference.models import Account, StatusEvent
from gateway.reference.status import AccountStatus, apply_derived_status, derive_status

START = AccountStatus("micro", dt.date(2020, 1, 1))


@dataclass(frozen=True)
class Event:
    id: int
    event: str
    effective_date: dt.date
    detail: str | None = None


def test_radiation_then_reaffiliation() -> None:
    events = [
        Event(1, "affiliation", dt.date(2020, 1, 1), "micro"),
        Event(2, "radiation", dt.date(2023, 6, 30), "cessation d'activité"),
    ]
    radiated = derive_status(START, events)
    assert radiated == AccountStatus(
        "micro", dt.date(2020, 1, 1), dt.date(2023, 6, 30), "cessation d'activité"
    )
    assert radiated.is_radiated

    back = derive_status(START, [*events, Event(3, "affiliation", dt.date(2024, 2, 1), "micro")])
    assert back == AccountStatus("micro", dt.date(2024, 2, 1))
    assert not back.is_radiated


def test_regime_change_and_affiliation_regime() -> None:
    events = [
        Event(1, "affiliation", dt.date(2020, 1, 1), "micro"),
        Event(2, "regime_change", dt.date(2022, 1, 1), "classique"),
    ]
    assert derive_status(START, events).regime == "classique"
    # Events replay in date order, whatever order they were stored in.
    late_first = [Event(1, "regime_change", dt.date(2022, 1, 1), "classique")]
    late_first.append(Event(2, "affiliation", dt.date(2020, 1, 1), "micro"))
    assert derive_status(START, late_first).regime == "classique"
    # An affiliation without a regime keeps the one the account has.
    assert derive_status(
        AccountStatus("classique", dt.date(2020, 1, 1)),
        [Event(1, "affiliation", dt.date(2020, 1, 1))],
    ) == AccountStatus("classique", dt.date(2020, 1, 1))


def test_same_day_events_replay_in_id_order() -> None:
    day = dt.date(2024, 5, 1)
    radiation_last = [Event(1, "affiliation", day, "micro"), Event(2, "radiation", day, "x")]
    assert derive_status(START, radiation_last).is_radiated
    radiation_first = [Event(2, "affiliation", day, "micro"), Event(1, "radiation", day, "x")]
    assert not derive_status(START, radiation_first).is_radiated


def test_no_event_keeps_the_start_without_radiation() -> None:
    assert derive_status(START, []) == START


def test_apply_derived_status_updates_only_what_changed(session: Session, db: Database) -> None:
    account = create_account(session, radiation_date=dt.date(2021, 1, 1), radiation_reason="x")
    create_status_event(session, account, "affiliation", dt.date(2020, 1, 1), detail="micro")
    create_status_event(session, account, "regime_change", dt.date(2021, 3, 1), detail="classique")
    untouched = create_account(session, radiation_date=dt.date(2021, 1, 1), radiation_reason="x")
    session.commit()

    with db.sync_engine.begin() as connection:
        changed = apply_derived_status(connection, [account.id, untouched.id], utcnow())
    with db.sync_engine.begin() as connection:
        changed_again = apply_derived_status(connection, [account.id, untouched.id], utcnow())

    assert (changed, changed_again) == (1, 0)
    session.expire_all()
    assert (account.regime, account.radiation_date) == ("classique", None)
    # An account without events is left as it is.
    assert untouched.radiation_date == dt.date(2021, 1, 1)


# --- ingestion -------------------------------------------------------------------------------


def _event(siren: str, event: str, day: str, detail: str | None = None) -> dict[str, object]:
    return {"siren": siren, "event": event, "effective_date": day, "detail": detail}


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    if path.suffix == ".csv":
        return write_csv(path, STATUS_COLUMNS, rows)
    return write_jsonl(path, rows)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_status_events_move_the_account(
    session: Session, db: Database, tmp_path: Path, suffix: str
) -> None:
    account = create_account(session, affiliation_date=dt.date(2019, 4, 1))
    create_status_event(session, account, "affiliation", dt.date(2019, 4, 1), detail="micro")
    session.commit()
    events = [
        _event(account.siren, "regime_change", "2021-01-01", "classique"),
        _event(account.siren, "radiation", "2023-06-30", "cessation d'activité"),
    ]
    first = _write(tmp_path / f"first{suffix}", events)
    second = _write(
        tmp_path / f"second{suffix}",
        [*events, _event(account.siren, "affiliation", "2024-09-01")],
    )

    radiated = ingest_file(db.sync_engine, "status-events", first, rejections_dir=tmp_path)

    assert (radiated.added, radiated.rejected) == (2, 0)
    session.refresh(account)
    assert (account.regime, account.radiation_date, account.radiation_reason) == (
        "classique",
        dt.date(2023, 6, 30),
        "cessation d'activité",
    )

    reaffiliated = ingest_file(db.sync_engine, "status-events", second, rejections_dir=tmp_path)

    assert (reaffiliated.added, reaffiliated.unchanged) == (1, 2)
    session.refresh(account)
    assert (account.regime, account.affiliation_date, account.radiation_date) == (
        "classique",
        dt.date(2024, 9, 1),
        None,
    )
    assert len(session.scalars(select(StatusEvent)).all()) == 4


def test_status_event_rejections(session: Session, db: Database, tmp_path: Path) -> None:
    account = create_account(session)
    session.commit()
    rows = [
        _event(account.siren, "radiation", "2023-06-30", "cessation d'activité"),
        _event(account.siren, "radiation", "2023-06-30", "départ à la retraite"),  # conflict
        _event(account.siren, "radiation", "2023-07-31"),  # no reason
        _event(account.siren, "regime_change", "2023-01-01", "auto-entrepreneur"),
        _event(new_siren(), "radiation", "2023-06-30", "x"),  # no such account
    ]
    path = write_csv(tmp_path / "events.csv", STATUS_COLUMNS, rows)

    result = ingest_file(db.sync_engine, "status-events", path, rejections_dir=tmp_path)

    assert (result.added, result.rejected) == (1, 4)
    assert result.report_path is not None
    assert [(e["line"], e["field"], e["code"]) for e in read_report(result.report_path)] == [
        ("3", "detail", "row.conflict"),
        ("4", "detail", "detail.missing"),
        ("5", "detail", "detail.not_a_regime"),
        ("6", "siren", "siren.unknown"),
    ]
    session.expire_all()
    stored = session.get(Account, account.id)
    assert stored is not None
    assert stored.radiation_reason == "cessation d'activité"
