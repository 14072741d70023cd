"""CFP ingestion: one row per account and year, updated when payments arrive."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from factories import create_account
from reference_files import CFP_COLUMNS, read_report, write_csv, write_jsonl
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.database import Database
from gateway.reference.ingest import ingest_file
from gateway.reference.models import CfpPayment


def _cfp(siren: str, year: int, paid: str = "0", paid_at: str | None = None) -> dict[str, object]:
    return {
        "siren": siren,
        "year": year,
        "base": "30000.00",
        "rate": "0.3",
        "amount_due": "90.00",
        "amount_paid": paid,
        "paid_at": paid_at,
        "fund": "FAFCEA",
    }


def _payments(session: Session) -> list[tuple[int, Decimal, dt.date | None]]:
    session.expire_all()
    rows = session.scalars(select(CfpPayment).order_by(CfpPayment.year)).all()
    return [(row.year, row.amount_paid, row.payment_date) for row in rows]


def test_a_later_payment_updates_the_year(session: Session, db: Database, tmp_path: Path) -> None:
    account = create_account(session)
    session.commit()
    due = write_csv(
        tmp_path / "due.csv",
        CFP_COLUMNS,
        [_cfp(account.siren, 2024, "90", "2025-02-10"), _cfp(account.siren, 2025)],
    )
    paid = write_jsonl(
        tmp_path / "paid.jsonl",
        [
            _cfp(account.siren, 2024, "90.00", "2025-02-10"),  # same values
            _cfp(account.siren, 2025, "45", "2026-02-12"),  # partly paid
        ],
    )

    first = ingest_file(db.sync_engine, "cfp", due, rejections_dir=tmp_path)
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    assert _payments(session) == [
        (2024, Decimal("90.00"), dt.date(2025, 2, 10)),
        (2025, Decimal("0.00"), None),
    ]

    second = ingest_file(db.sync_engine, "cfp", paid, rejections_dir=tmp_path)

    assert (second.added, second.updated, second.unchanged) == (0, 1, 1)
    assert _payments(session) == [
        (2024, Decimal("90.00"), dt.date(2025, 2, 10)),
        (2025, Decimal("45.00"), dt.date(2026, 2, 12)),
    ]
    payment = session.scalars(select(CfpPayment).where(CfpPayment.year == 2025)).one()
    assert (payment.base, payment.rate) == (Decimal("30000"), Decimal("0.3"))
    assert payment.fund == "FAFCEA"
    third = ingest_file(db.sync_engine, "cfp", paid, rejections_dir=tmp_path)
    assert (third.added, third.updated, third.unchanged) == (0, 0, 2)


def test_the_same_year_twice_in_one_file_keeps_the_later_row(
    session: Session, db: Database, tmp_path: Path
) -> None:
    account = create_account(session)
    session.commit()
    path = write_csv(
        tmp_path / "cfp.csv",
        CFP_COLUMNS,
        [
            _cfp(account.siren, 2025),
            _cfp(account.siren, 2025, "90", "2026-01-15"),
            {**_cfp(account.siren, 2026), "rate": "0.3333"},
        ],
    )

    result = ingest_file(db.sync_engine, "cfp", path, rejections_dir=tmp_path)

    assert (result.added, result.updated, result.rejected) == (1, 1, 1)
    assert _payments(session) == [(2025, Decimal("90.00"), dt.date(2026, 1, 15))]
    assert result.report_path is not None
    assert [(e["line"], e["code"]) for e in read_report(result.report_path)] == [
        ("4", "rate.too_precise")
    ]
