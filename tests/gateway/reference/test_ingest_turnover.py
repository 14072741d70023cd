"""Turnover ingestion: the acceptance case, rectifications as history, conflicts, timestamps."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from factories import create_account
from reference_files import TURNOVER_COLUMNS, RunCli, read_report, write_csv, write_jsonl
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from gateway.database import Database
from gateway.identifiers import NIR_SHAPE, siren_with_checksum
from gateway.reference.ingest import Dataset, ingest_file
from gateway.reference.models import Account, IngestionRun, TurnoverDeclaration
from gateway.settings import Settings


def _accounts(session: Session, count: int, **fields: object) -> list[Account]:
    accounts = [create_account(session, **fields) for _ in range(count)]  # type: ignore[arg-type]
    session.commit()
    return accounts


def _row(siren: str, period: str, declared_at: str, sales: str = "100.00") -> dict[str, object]:
    return {
        "siren": siren,
        "period": period,
        "sales_bic": sales,
        "services_bic": "0",
        "services_bnc": "0.5",
        "declared_at": declared_at,
    }


def _declarations(session: Session) -> list[TurnoverDeclaration]:
    session.expire_all()
    return list(
        session.scalars(
            select(TurnoverDeclaration).order_by(
                TurnoverDeclaration.account_id,
                TurnoverDeclaration.period,
                TurnoverDeclaration.declared_at,
            )
        )
    )


def _bad_checksum(siren: str) -> str:
    return siren[:8] + str((int(siren[8]) + 1) % 10)


def _acceptance_file(path: Path, sirens: list[str]) -> tuple[Path, dict[int, str]]:
    """1,000 rows over 50 accounts and 20 months, five of them broken in five ways."""
    rows = []
    for index in range(1000):
        month = dt.date(2024, 1, 1) + dt.timedelta(days=31 * (index // 50))
        rows.append(
            _row(
                sirens[index % 50],
                f"{month.year}-{month.month:02d}",
                f"{month.year}-{month.month:02d}-28T10:00:00Z",
                sales=f"{index}.25",
            )
        )
    broken = {
        # line number (header is line 1, row i is line i + 2) -> expected code
        17: "siren.bad_checksum",
        250: "siren.unknown",
        498: "amount.negative",
        777: "period.malformed",
        1001: "field.missing",
    }
    rows[17 - 2]["siren"] = _bad_checksum(str(rows[17 - 2]["siren"]))
    rows[250 - 2]["siren"] = siren_with_checksum("99999998")
    rows[498 - 2]["sales_bic"] = "-12.50"
    rows[777 - 2]["period"] = "2025-13"
    rows[1001 - 2]["services_bnc"] = ""
    return write_csv(path, TURNOVER_COLUMNS, rows), broken


def test_invariant_5_keeps_995_good_rows_reports_5_bad_ones_and_is_idempotent(
    session: Session, settings: Settings, run_cli: RunCli, tmp_path: Path
) -> None:
    """The issue's case: if it failed, one bad row could sink a file or a good row be lost."""
    accounts = _accounts(session, 50)
    path, broken = _acceptance_file(tmp_path / "turnover.csv", [a.siren for a in accounts])

    first = run_cli("ingest", "turnover", path)

    assert first.exit_code == 0, first.output
    summary = first.stdout.strip()
    assert summary.startswith(
        "turnover: 1000 read, 995 added, 0 updated, 0 unchanged, 5 rejected (report: "
    )
    report = Path(summary.rsplit("(report: ", 1)[1].rstrip(")"))
    assert report.parent == settings.var_dir / "rejections"
    assert report.name.startswith("turnover-")
    assert report.suffix == ".csv"
    entries = read_report(report)
    assert {int(entry["line"]): entry["code"] for entry in entries} == broken
    assert len(entries) == 5
    assert {entry["field"] for entry in entries} == {
        "siren",
        "sales_bic",
        "period",
        "services_bnc",
    }
    assert session.scalar(select(func.count()).select_from(TurnoverDeclaration)) == 995

    second = run_cli("ingest", "turnover", path, "--json")

    assert second.exit_code == 0, second.output
    counts = json.loads(second.stdout)
    assert {key: counts[key] for key in ("read", "added", "updated", "unchanged", "rejected")} == {
        "read": 1000,
        "added": 0,
        "updated": 0,
        "unchanged": 995,
        "rejected": 5,
    }
    assert counts["report"]
    assert Path(counts["report"]) != report
    assert session.scalar(select(func.count()).select_from(TurnoverDeclaration)) == 995
    runs = session.scalars(select(IngestionRun).order_by(IngestionRun.id)).all()
    assert [(run.dataset, run.rows_added, run.rows_rejected) for run in runs] == [
        ("turnover", 995, 5),
        ("turnover", 0, 5),
    ]
    assert runs[0].source_name == "turnover.csv"
    assert runs[0].source_sha256 == runs[1].source_sha256
    assert len(runs[0].source_sha256) == 64


def test_acceptance_through_the_loader_function(
    session: Session, db: Database, tmp_path: Path
) -> None:
    accounts = _accounts(session, 50)
    path, broken = _acceptance_file(tmp_path / "turnover.csv", [a.siren for a in accounts])
    report = tmp_path / "report.csv"

    result = ingest_file(
        db.sync_engine,
        Dataset.TURNOVER,
        path,
        rejections_dir=tmp_path / "unused",
        report_path=report,
        batch_size=64,  # many batches, so that rejections and batches interleave
    )

    assert (result.read, result.added, result.rejected) == (1000, 995, 5)
    assert result.report_path == report
    assert [int(entry["line"]) for entry in read_report(report)] == sorted(broken)
    again = ingest_file(
        db.sync_engine, "turnover", path, rejections_dir=tmp_path / "rejections", batch_size=64
    )
    assert (again.added, again.unchanged, again.rejected) == (0, 995, 5)
    assert again.report_path is not None
    assert again.report_path.parent == tmp_path / "rejections"
    assert not (tmp_path / "unused").exists()


def test_jsonl_with_the_same_fields_loads_like_csv(
    session: Session, db: Database, tmp_path: Path
) -> None:
    (account,) = _accounts(session, 1)
    rows: list[dict[str, object]] = [
        _row(account.siren, "2026-01", "2026-02-10"),
        {**_row(account.siren, "2026-Q1", "2026-04-10"), "sales_bic": 1500, "services_bic": 0.5},
        {**_row(account.siren, "2026-02", "2026-03-10"), "comment": "unknown key"},
    ]
    path = write_jsonl(tmp_path / "turnover.jsonl", rows)
    with path.open("a", encoding="utf-8") as file:
        file.write("\n")  # blank lines are not records
        file.write('{"siren": "broken\n')
        file.write('["not", "an", "object"]\n')

    result = ingest_file(db.sync_engine, "turnover", path, rejections_dir=tmp_path)

    assert (result.read, result.added, result.rejected) == (5, 2, 3)
    assert result.report_path is not None
    assert [(e["line"], e["field"], e["code"]) for e in read_report(result.report_path)] == [
        ("3", "comment", "field.unknown"),
        ("5", "", "row.unparseable"),
        ("6", "", "row.unparseable"),
    ]
    stored = _declarations(session)
    assert [(d.period, d.periodicity, d.period_start) for d in stored] == [
        ("2026-01", "monthly", dt.date(2026, 1, 1)),
        ("2026-Q1", "quarterly", dt.date(2026, 1, 1)),
    ]
    assert stored[1].sales_bic == Decimal("1500")
    assert stored[1].services_bic == Decimal("0.50")


def test_a_rectification_is_kept_beside_the_first_declaration(
    session: Session, db: Database, tmp_path: Path
) -> None:
    """Declarations are history: an overwrite would lose what partners were first told."""
    (account,) = _accounts(session, 1)
    first = write_csv(
        tmp_path / "first.csv",
        TURNOVER_COLUMNS,
        [_row(account.siren, "2026-03", "2026-04-05T09:00:00", sales="1000.00")],
    )
    later = write_csv(
        tmp_path / "later.csv",
        TURNOVER_COLUMNS,
        [
            _row(account.siren, "2026-03", "2026-04-05T09:00:00", sales="1000.00"),
            _row(account.siren, "2026-03", "2026-05-20T14:30:00", sales="1250.00"),
        ],
    )

    ingest_file(db.sync_engine, "turnover", first, rejections_dir=tmp_path)
    result = ingest_file(db.sync_engine, "turnover", later, rejections_dir=tmp_path)

    assert (result.added, result.unchanged, result.rejected) == (1, 1, 0)
    assert [(d.sales_bic, d.declared_at) for d in _declarations(session)] == [
        (Decimal("1000.00"), dt.datetime(2026, 4, 5, 9, tzinfo=dt.UTC)),
        (Decimal("1250.00"), dt.datetime(2026, 5, 20, 14, 30, tzinfo=dt.UTC)),
    ]


def test_same_declared_at_with_other_amounts_is_a_conflict_not_an_overwrite(
    session: Session, db: Database, tmp_path: Path
) -> None:
    (account,) = _accounts(session, 1)
    rows = [
        _row(account.siren, "2026-03", "2026-04-05", sales="1000.00"),
        _row(account.siren, "2026-03", "2026-04-05", sales="1000"),  # same amounts
        _row(account.siren, "2026-03", "2026-04-05T00:00:00+00:00", sales="999.99"),
    ]
    path = write_csv(tmp_path / "t.csv", TURNOVER_COLUMNS, rows)

    result = ingest_file(db.sync_engine, "turnover", path, rejections_dir=tmp_path)

    assert (result.added, result.unchanged, result.rejected) == (1, 1, 1)
    assert result.report_path is not None
    assert [(e["line"], e["code"]) for e in read_report(result.report_path)] == [
        ("4", "row.conflict")
    ]
    assert [d.sales_bic for d in _declarations(session)] == [Decimal("1000.00")]
    # The same conflict against a stored row, in a later file.
    again = ingest_file(
        db.sync_engine,
        "turnover",
        write_csv(tmp_path / "u.csv", TURNOVER_COLUMNS, rows[2:]),
        rejections_dir=tmp_path,
    )
    assert (again.added, again.rejected) == (0, 1)


def test_declared_at_is_stored_in_utc(session: Session, db: Database, tmp_path: Path) -> None:
    """A date is midnight UTC, a naive time is UTC, an offset is converted."""
    (account,) = _accounts(session, 1)
    written = {
        "2026-01": ("2026-04-05", dt.datetime(2026, 4, 5, tzinfo=dt.UTC)),
        "2026-02": ("2026-04-05T10:15", dt.datetime(2026, 4, 5, 10, 15, tzinfo=dt.UTC)),
        "2026-03": (
            "2026-04-05 10:15:30.25",
            dt.datetime(2026, 4, 5, 10, 15, 30, 250000, tzinfo=dt.UTC),
        ),
        "2026-04": ("2026-05-05T12:15:00+02:00", dt.datetime(2026, 5, 5, 10, 15, tzinfo=dt.UTC)),
        "2026-05": ("2026-06-05T10:15:00z", dt.datetime(2026, 6, 5, 10, 15, tzinfo=dt.UTC)),
    }
    path = write_csv(
        tmp_path / "t.csv",
        TURNOVER_COLUMNS,
        [_row(account.siren, period, text) for period, (text, _) in written.items()],
    )

    result = ingest_file(db.sync_engine, "turnover", path, rejections_dir=tmp_path)

    assert result.added == 5
    assert {d.period: d.declared_at for d in _declarations(session)} == {
        period: stored for period, (_, stored) in written.items()
    }
    # The same instants written another way are the same declarations.
    other_notation = write_csv(
        tmp_path / "u.csv",
        TURNOVER_COLUMNS,
        [
            _row(account.siren, "2026-01", "2026-04-05T02:00:00+02:00"),
            _row(account.siren, "2026-04", "2026-05-05T10:15:00Z"),
        ],
    )
    again = ingest_file(db.sync_engine, "turnover", other_notation, rejections_dir=tmp_path)
    assert (again.added, again.unchanged) == (0, 2)


def test_every_kind_of_bad_value_is_reported_and_the_good_rows_kept(
    session: Session, db: Database, tmp_path: Path
) -> None:
    (account,) = _accounts(session, 1)
    bad_values = [
        ("sales_bic", "12.345", "amount.too_precise"),
        ("sales_bic", "12,50", "amount.malformed"),
        ("services_bic", "-0.01", "amount.negative"),
        ("services_bnc", "1234567890123", "amount.too_large"),
        ("period", "2026-Q5", "period.malformed"),
        ("declared_at", "05/04/2026", "datetime.malformed"),
        ("siren", "12345678", "siren.malformed"),
    ]
    rows = []
    for index, (field, value, _) in enumerate(bad_values):
        rows.append(_row(account.siren, f"2025-{index + 1:02d}", "2026-01-01"))
        rows.append({**_row(account.siren, f"2024-{index + 1:02d}", "2026-01-01"), field: value})
    path = write_csv(tmp_path / "t.csv", TURNOVER_COLUMNS, rows)

    result = ingest_file(db.sync_engine, "turnover", path, rejections_dir=tmp_path)

    assert (result.read, result.added, result.rejected) == (14, 7, 7)
    assert result.report_path is not None
    entries = read_report(result.report_path)
    assert [(int(e["line"]), e["field"], e["code"]) for e in entries] == [
        (2 * index + 3, field, code) for index, (field, _, code) in enumerate(bad_values)
    ]
    for entry, (_, value, _) in zip(entries, bad_values, strict=True):
        assert value not in entry["reason"]
    assert {d.period for d in _declarations(session)} == {f"2025-{n:02d}" for n in range(1, 8)}


def test_zero_declarations_and_declarations_upstream_vouches_for_are_stored(
    session: Session, db: Database, tmp_path: Path
) -> None:
    """Upstream is authoritative: no second-guessing of regime or affiliation date here."""
    micro = create_account(session, affiliation_date=dt.date(2026, 1, 15))
    classique = create_account(session, regime="classique")
    session.commit()
    zero = {**_row(micro.siren, "2026-02", "2026-03-01"), "sales_bic": "0", "services_bnc": "0"}
    path = write_csv(
        tmp_path / "t.csv",
        TURNOVER_COLUMNS,
        [
            zero,
            _row(micro.siren, "2025-Q4", "2026-01-31"),  # before the affiliation month
            _row(classique.siren, "2026-01", "2026-02-01"),
        ],
    )

    result = ingest_file(db.sync_engine, "turnover", path, rejections_dir=tmp_path)

    assert (result.added, result.rejected) == (3, 0)
    assert result.report_path is None
    stored = _declarations(session)
    assert any(d.sales_bic == d.services_bic == d.services_bnc == 0 for d in stored)


def test_the_report_never_quotes_a_nir_even_one_sent_in_a_turnover_field(
    session: Session, db: Database, tmp_path: Path
) -> None:
    (account,) = _accounts(session, 1)
    nir = str(account.nir)
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {**_row(account.siren, "2026-01", "2026-02-01"), "siren": nir},
            {**_row(account.siren, "2026-02", "2026-03-01"), nir: "x"},
            {**_row(account.siren, "2026-03", "2026-04-01"), "period": nir},
        ],
    )

    result = ingest_file(db.sync_engine, "turnover", path, rejections_dir=tmp_path)

    assert result.rejected == 3
    assert result.report_path is not None
    text = result.report_path.read_text(encoding="utf-8")
    assert NIR_SHAPE.search(text) is None
    assert nir not in text


def test_a_file_in_no_useful_order_is_matched_on_exact_keys(
    session: Session, db: Database, tmp_path: Path
) -> None:
    """Rows spread over many accounts and periods at once take the exact-key lookup."""
    accounts = _accounts(session, 6)
    rows = [
        _row(account.siren, f"2025-{index + 1:02d}", "2026-01-15T08:00:00")
        for index, account in enumerate(accounts)
    ]
    path = write_csv(tmp_path / "t.csv", TURNOVER_COLUMNS, rows)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(db.sync_engine, "before_cursor_execute", record)
    try:
        first = ingest_file(db.sync_engine, "turnover", path, rejections_dir=tmp_path, batch_size=6)
        conflicting = write_csv(
            tmp_path / "u.csv", TURNOVER_COLUMNS, [*rows[:5], {**rows[5], "sales_bic": "1"}]
        )
        second = ingest_file(
            db.sync_engine, "turnover", conflicting, rejections_dir=tmp_path, batch_size=6
        )
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", record)

    assert (first.added, second.added, second.unchanged, second.rejected) == (6, 0, 5, 1)
    assert any("turnover_declaration.declared_at) IN" in sql for sql in statements)
