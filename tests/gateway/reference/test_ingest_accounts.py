"""Accounts ingestion: one account per person, its affiliation event, conflicts, NIR privacy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from factories import create_account, new_nir, new_siren
from reference_files import ACCOUNT_COLUMNS, read_report, write_csv, write_jsonl
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.database import Database
from gateway.identifiers import NIR_SHAPE
from gateway.reference.ingest import ingest_file
from gateway.reference.models import Account, StatusEvent


def _account(nir: str, siren: str, **fields: str) -> dict[str, object]:
    return {
        "nir": nir,
        "siren": siren,
        "category": "commercant",
        "regime": "micro",
        "affiliation_date": "2024-03-01",
        **fields,
    }


def test_an_account_is_created_with_its_affiliation_event(
    session: Session, db: Database, tmp_path: Path
) -> None:
    rows = [
        _account(new_nir(), new_siren()),
        _account(new_nir(), new_siren(), category="liberal", regime="classique"),
    ]
    # A NIR may come with spaces, as people write it.
    nir = str(rows[0]["nir"])
    parts = (nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:])
    rows[0]["nir"] = " ".join(parts)
    path = write_csv(tmp_path / "accounts.csv", ACCOUNT_COLUMNS, rows)

    result = ingest_file(db.sync_engine, "accounts", path, rejections_dir=tmp_path)

    assert (result.read, result.added, result.rejected) == (2, 2, 0)
    accounts = session.scalars(select(Account).order_by(Account.id)).all()
    assert [(a.nir, a.category, a.regime, a.radiation_date) for a in accounts] == [
        (nir, "commercant", "micro", None),
        (rows[1]["nir"], "liberal", "classique", None),
    ]
    events = session.scalars(select(StatusEvent).order_by(StatusEvent.id)).all()
    assert [(e.account_id, e.event, e.effective_date, e.detail) for e in events] == [
        (accounts[0].id, "affiliation", dt.date(2024, 3, 1), "micro"),
        (accounts[1].id, "affiliation", dt.date(2024, 3, 1), "classique"),
    ]


def test_reingesting_is_a_no_op_and_conflicts_are_rejected(
    session: Session, db: Database, tmp_path: Path
) -> None:
    """One person, one account: re-pointing a NIR or a SIREN would merge two people's data."""
    existing = create_account(session)
    session.commit()
    fresh_nir, fresh_siren = new_nir(), new_siren()
    rows = [
        _account(existing.nir, existing.siren, regime="classique"),  # identical pair: unchanged
        _account(existing.nir, new_siren()),  # known NIR, other SIREN
        _account(new_nir(), existing.siren),  # known SIREN, other NIR
        _account(fresh_nir, fresh_siren),  # new
        _account(fresh_nir, fresh_siren),  # the same again in the same batch
        _account(fresh_nir, new_siren()),  # conflicts with a row of the same batch
    ]
    path = write_jsonl(tmp_path / "accounts.jsonl", rows)

    result = ingest_file(db.sync_engine, "accounts", path, rejections_dir=tmp_path)

    assert (result.added, result.unchanged, result.rejected) == (1, 2, 3)
    assert result.report_path is not None
    assert [(e["line"], e["field"], e["code"]) for e in read_report(result.report_path)] == [
        ("2", "nir", "nir.conflict"),
        ("3", "siren", "siren.conflict"),
        ("6", "nir", "nir.conflict"),
    ]
    session.expire_all()
    assert session.get(Account, existing.id).regime == "micro"  # type: ignore[union-attr]
    again = ingest_file(db.sync_engine, "accounts", path, rejections_dir=tmp_path)
    assert (again.added, again.unchanged, again.rejected) == (0, 3, 3)
    assert len(session.scalars(select(Account)).all()) == 2


def test_the_report_never_contains_a_nir(session: Session, db: Database, tmp_path: Path) -> None:
    """Invariant 3: a NIR never appears in clear in an error message, here the report."""
    existing = create_account(session)
    session.commit()
    good = new_nir()
    bad_key = good[:13] + f"{(int(good[13:]) % 97) + 1:02d}"
    rows = [
        _account(bad_key, new_siren()),
        _account(good[:7] + "A" + good[8:], new_siren()),  # malformed
        _account(existing.nir, new_siren()),  # conflict
        _account(new_nir(), new_siren(), category=good),  # a NIR where a category goes
        {**_account(new_nir(), new_siren()), good: "x"},  # a NIR as a column name
    ]
    path = write_jsonl(tmp_path / "accounts.jsonl", rows)

    result = ingest_file(
        db.sync_engine, "accounts", path, rejections_dir=tmp_path, report_path=tmp_path / "r.csv"
    )

    assert result.rejected == 5
    report = (tmp_path / "r.csv").read_text(encoding="utf-8")
    assert NIR_SHAPE.search(report) is None
    for nir in (good, bad_key, existing.nir):
        assert nir not in report
        assert nir[:13] not in report
    codes = [entry["code"] for entry in read_report(tmp_path / "r.csv")]
    assert codes == [
        "nir.bad_key",
        "nir.malformed",
        "nir.conflict",
        "category.unknown",
        "field.unknown",
    ]
