"""Commands that load the reference store: ``gateway ingest ...`` and ``gateway seed``.

Exit codes: 0 when the file was loaded, even with rejected rows (they are in the report);
2 when nothing was loaded because the file as a whole is unusable, the database schema is
behind, or (for ``seed``) the store is not empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from gateway.cli.context import console, database, settings
from gateway.migrate import schema_state
from gateway.reference.ingest import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    Dataset,
    FileError,
    FileFormat,
    ProgressCallback,
    ingest_file,
)
from gateway.reference.seed import MAX_PERSONS, ReferenceStoreNotEmptyError, seed_reference_data

ingest_app = typer.Typer(help="Load upstream files into the reference store.", no_args_is_help=True)

FileArgument = Annotated[
    Path,
    typer.Argument(
        help="CSV with a header line, or JSON Lines (.jsonl, .ndjson).",
        dir_okay=False,
        show_default=False,
    ),
]
FormatOption = Annotated[
    FileFormat | None,
    typer.Option("--format", help="Override the format told by the file's extension."),
]
ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Where to write the rejection report (default: <var_dir>/rejections/).",
        dir_okay=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object instead of the summary line.")
]
BatchOption = Annotated[
    int, typer.Option("--batch-size", help="Rows per transaction.", min=1, max=MAX_BATCH_SIZE)
]


def _fail(message: str) -> typer.Exit:
    # Plain echo, not rich: messages may hold brackets that rich would read as markup.
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(2)


def _require_current_schema() -> None:
    state = schema_state(database().sync_engine, settings().database_url)
    if not state.is_current:
        raise _fail(state.describe())


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[ProgressCallback | None]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console(),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def _ingest(
    dataset: Dataset,
    file: Path,
    file_format: FileFormat | None,
    report: Path | None,
    as_json: bool,
    batch_size: int,
) -> None:
    _require_current_schema()
    current = settings()
    show_progress = console().is_terminal and not as_json
    try:
        with _progress(show_progress, dataset.value) as on_progress:
            result = ingest_file(
                database().sync_engine,
                dataset,
                file,
                rejections_dir=current.var_dir / "rejections",
                report_path=report,
                file_format=file_format,
                batch_size=batch_size,
                on_progress=on_progress,
            )
    except FileError as exc:
        raise _fail(f"{dataset.value}: nothing loaded: {exc.message}") from None
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        typer.echo(result.summary())


@ingest_app.command("accounts")
def ingest_accounts(
    file: FileArgument,
    file_format: FormatOption = None,
    report: ReportOption = None,
    as_json: JsonOption = False,
    batch_size: BatchOption = DEFAULT_BATCH_SIZE,
) -> None:
    """Accounts: nir,siren,category,regime,affiliation_date."""
    _ingest(Dataset.ACCOUNTS, file, file_format, report, as_json, batch_size)


@ingest_app.command("status-events")
def ingest_status_events(
    file: FileArgument,
    file_format: FormatOption = None,
    report: ReportOption = None,
    as_json: JsonOption = False,
    batch_size: BatchOption = DEFAULT_BATCH_SIZE,
) -> None:
    """Status events: siren,event,effective_date,detail."""
    _ingest(Dataset.STATUS_EVENTS, file, file_format, report, as_json, batch_size)


@ingest_app.command("turnover")
def ingest_turnover(
    file: FileArgument,
    file_format: FormatOption = None,
    report: ReportOption = None,
    as_json: JsonOption = False,
    batch_size: BatchOption = DEFAULT_BATCH_SIZE,
) -> None:
    """Turnover: siren,period,sales_bic,services_bic,services_bnc,declared_at."""
    _ingest(Dataset.TURNOVER, file, file_format, report, as_json, batch_size)


@ingest_app.command("cfp")
def ingest_cfp(
    file: FileArgument,
    file_format: FormatOption = None,
    report: ReportOption = None,
    as_json: JsonOption = False,
    batch_size: BatchOption = DEFAULT_BATCH_SIZE,
) -> None:
    """CFP: siren,year,base,rate,amount_due,amount_paid,paid_at,fund."""
    _ingest(Dataset.CFP, file, file_format, report, as_json, batch_size)


def seed_command(
    persons: Annotated[
        int, typer.Option(help="How many persons to generate.", min=1, max=MAX_PERSONS)
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 1,
    as_json: JsonOption = False,
) -> None:
    """Generate deterministic synthetic reference data into an empty store."""
    _require_current_schema()
    try:
        summary = seed_reference_data(database().sync_engine, persons, seed)
    except ReferenceStoreNotEmptyError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        typer.echo(
            f"seed {seed}: {summary.persons} persons, {summary.accounts} accounts, "
            f"{summary.status_events} status events, {summary.turnover_declarations} "
            f"turnover declarations, {summary.cfp_payments} CFP payments "
            f"in {summary.seconds:.1f} s"
        )
