"""`gateway ingest`: exit codes, file-level errors that write nothing, options, batch replay."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from factories import create_account
from reference_files import STATUS_COLUMNS, TURNOVER_COLUMNS, RunCli, read_report, write_csv
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.cli.context import database
from gateway.database import Database, utcnow
from gateway.migrate import upgrade
from gateway.reference.ingest import loader as loader_module
from gateway.reference.ingest import pipeline
from gateway.reference.ingest.loader import BatchOutcome
from gateway.reference.ingest.rows import TurnoverRow
from gateway.reference.models import IngestionRun, StatusEvent, TurnoverDeclaration
from gateway.settings import Settings, get_settings


def _turnover(siren: str, period: str, sales: str = "10") -> dict[str, object]:
    return {
        "siren": siren,
        "period": period,
        "sales_bic": sales,
        "services_bic": "0",
        "services_bnc": "0",
        "declared_at": "2026-10-01T08:00:00Z",
    }


def _nothing_written(session: Session, settings: Settings) -> None:
    assert session.scalar(select(func.count()).select_from(IngestionRun)) == 0
    assert session.scalar(select(func.count()).select_from(TurnoverDeclaration)) == 0
    rejections = settings.var_dir / "rejections"
    assert not rejections.exists() or not any(rejections.iterdir())


def test_an_unknown_column_fails_the_file_with_exit_2_and_writes_nothing(
    session: Session, settings: Settings, run_cli: RunCli, tmp_path: Path
) -> None:
    account = create_account(session)
    session.commit()
    path = tmp_path / "turnover.csv"
    write_csv(path, (*TURNOVER_COLUMNS, "comment"), [_turnover(account.siren, "2026-01")])
    report = tmp_path / "report.csv"

    result = run_cli("ingest", "turnover", path, "--report", report)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "unknown column(s): comment" in result.stderr
    assert "nothing loaded" in result.stderr
    _nothing_written(session, settings)
    assert not report.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("turnover.csv", "siren,period,sales_bic\n", "missing column(s)"),
        ("turnover.txt", "siren\n", "--format"),
        ("turnover.csv", "", "no header line"),
    ],
)
def test_other_file_level_errors(
    session: Session,
    settings: Settings,
    run_cli: RunCli,
    tmp_path: Path,
    name: str,
    content: str,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    result = run_cli("ingest", "turnover", path)

    assert result.exit_code == 2
    assert message in result.stderr
    _nothing_written(session, settings)


def test_a_report_that_cannot_be_written_fails_before_loading(
    session: Session, settings: Settings, run_cli: RunCli, tmp_path: Path
) -> None:
    account = create_account(session)
    session.commit()
    path = write_csv(tmp_path / "t.csv", TURNOVER_COLUMNS, [_turnover(account.siren, "2026-01")])
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("", encoding="utf-8")

    over_source = run_cli("ingest", "turnover", path, "--report", path)
    unwritable = run_cli("ingest", "turnover", path, "--report", not_a_directory / "r.csv")

    assert (over_source.exit_code, unwritable.exit_code) == (2, 2)
    assert "overwrite the file being loaded" in over_source.stderr
    assert "cannot write the report" in unwritable.stderr
    _nothing_written(session, settings)
    assert path.read_text(encoding="utf-8").startswith("siren,period")


def test_a_missing_file_is_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("ingest", "cfp", tmp_path / "absent.csv")
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_format_override_report_path_and_json(
    session: Session, run_cli: RunCli, tmp_path: Path
) -> None:
    account = create_account(session)
    session.commit()
    path = tmp_path / "events.export"  # an extension that says nothing
    path.write_text(
        json.dumps({"siren": account.siren, "event": "radiation", "effective_date": "2026-01-31"})
        + "\n",
        encoding="utf-8",
    )
    report = tmp_path / "out" / "report.csv"

    result = run_cli(
        "ingest", "status-events", path, "--format", "jsonl", "--report", report, "--json"
    )

    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert (output["dataset"], output["read"], output["rejected"]) == ("status-events", 1, 1)
    assert output["report"] == str(report)
    assert [entry["code"] for entry in read_report(report)] == ["detail.missing"]


def test_a_clean_file_writes_no_report_unless_asked(
    session: Session, settings: Settings, run_cli: RunCli, tmp_path: Path
) -> None:
    account = create_account(session)
    session.commit()
    path = write_csv(
        tmp_path / "events.csv",
        STATUS_COLUMNS,
        [{"siren": account.siren, "event": "affiliation", "effective_date": "2020-01-01"}],
    )

    result = run_cli("ingest", "status-events", path)

    assert result.exit_code == 0
    assert result.stdout.strip() == (
        "status-events: 1 read, 1 added, 0 updated, 0 unchanged, 0 rejected"
    )
    assert not (settings.var_dir / "rejections").exists()
    asked = run_cli("ingest", "status-events", path, "--report", tmp_path / "r.csv")
    assert asked.exit_code == 0
    assert read_report(tmp_path / "r.csv") == []
    assert session.scalar(select(func.count()).select_from(StatusEvent)) == 1


def test_a_database_behind_the_code_is_refused(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    behind = tmp_path / "behind.db"
    upgrade(f"sqlite:///{behind}", "0001")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{behind}")
    get_settings.cache_clear()
    database.cache_clear()
    path = tmp_path / "t.csv"
    path.write_text(",".join(TURNOVER_COLUMNS) + "\n", encoding="utf-8")

    result = run_cli("ingest", "turnover", path)

    assert result.exit_code == 2
    assert "gateway db upgrade" in result.stderr


# --- batches the database refuses ------------------------------------------------------------


def test_a_batch_the_database_refuses_is_replayed_row_by_row(
    session: Session, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent load commits a row between our lookup and our insert.

    The batch insert then fails on the unique constraint; without the row-by-row replay the
    batch's good rows would be lost with it.
    """
    account = create_account(session)
    session.commit()
    rows = [_turnover(account.siren, f"2025-{month:02d}") for month in range(1, 13)]
    path = write_csv(tmp_path / "t.csv", TURNOVER_COLUMNS, rows)
    real_known_rows = loader_module._known_rows
    raced = False

    def known_rows_then_race(*args: object) -> object:
        nonlocal raced
        found: object = real_known_rows(*args)  # type: ignore[arg-type]
        if not raced:
            raced = True
            with db.sync_engine.begin() as other:  # another process, another transaction
                _insert_declaration(other, account.id, "2025-07", sales="99")
        return found

    monkeypatch.setattr(loader_module, "_known_rows", known_rows_then_race)

    result = pipeline.ingest_file(db.sync_engine, "turnover", path, rejections_dir=tmp_path)

    assert raced
    assert (result.read, result.added, result.rejected) == (12, 11, 1)
    assert result.report_path is not None
    assert [(e["line"], e["code"]) for e in read_report(result.report_path)] == [
        ("8", "row.conflict")
    ]
    assert session.scalar(select(func.count()).select_from(TurnoverDeclaration)) == 12


def _insert_declaration(connection: Connection, account_id: int, period: str, sales: str) -> None:
    connection.execute(
        insert(TurnoverDeclaration),
        {
            "account_id": account_id,
            "period": period,
            "periodicity": "monthly",
            "period_start": dt.date(2025, 7, 1),
            "sales_bic": sales,
            "services_bic": 0,
            "services_bnc": 0,
            "declared_at": dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC),
            "recorded_at": utcnow(),
        },
    )


def test_a_row_the_database_refuses_alone_is_reported_not_lost(db: Database) -> None:
    """If even a single row is refused, it is reported and the other rows are kept."""
    row = TurnoverRow.model_validate(_turnover("732829320", "2025-01"))
    calls: list[list[int]] = []

    def fussy_loader(connection: Connection, rows: object, now: object) -> BatchOutcome:
        lines = [line for line, _ in rows]  # type: ignore[attr-defined]
        calls.append(lines)
        if 3 in lines:
            raise IntegrityError("INSERT", {}, Exception("unique"))
        return BatchOutcome(added=len(lines))

    with db.sync_engine.connect() as connection:
        outcome = pipeline._load_batch(connection, fussy_loader, [(2, row), (3, row), (4, row)])

    assert calls == [[2, 3, 4], [2], [3], [4]]
    assert (outcome.added, outcome.rejected) == (2, 1)
    assert [(r.line, r.code) for r in outcome.rejections] == [(3, "row.refused")]
