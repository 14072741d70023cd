"""One file, start to end: read, validate, load in batches, report rejections, record the run.

Memory holds one batch at a time. Each batch is one transaction; if the database refuses it
as a whole (a constraint the batch checks could not foresee, such as a concurrent load of the
same rows), the batch is replayed row by row, each row in its own transaction, so the good
rows are kept and each refused one is reported: no good row is ever dropped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, insert
from sqlalchemy.exc import DataError, IntegrityError

from gateway.database import utcnow
from gateway.reference.ingest.formats import FileError, FileFormat, SourceFile, format_for
from gateway.reference.ingest.loader import LOADERS, BatchOutcome, Loader
from gateway.reference.ingest.report import Rejection, RejectionReport, default_report_path
from gateway.reference.ingest.rows import ROW_MODELS, Dataset, RowModel, row_errors
from gateway.reference.models import IngestionRun

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "IngestionResult",
    "ProgressCallback",
    "ingest_file",
]

DEFAULT_BATCH_SIZE = 2000
# The exact-key lookups bind three parameters a row; SQLite allows 32,766 per statement.
MAX_BATCH_SIZE = 5000
log = structlog.get_logger(__name__)
ProgressCallback = Callable[[int, int], None]
"""Called after each batch with (bytes read, file size)."""


@dataclass(frozen=True)
class IngestionResult:
    dataset: Dataset
    source_name: str
    source_sha256: str
    read: int
    added: int
    updated: int
    unchanged: int
    rejected: int
    report_path: Path | None
    run_id: int
    seconds: float

    def summary(self) -> str:
        line = (
            f"{self.dataset}: {self.read} read, {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        )
        if self.report_path is not None:
            line += f" (report: {self.report_path})"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.value,
            "source": self.source_name,
            "sha256": self.source_sha256,
            "read": self.read,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "report": str(self.report_path) if self.report_path is not None else None,
            "ingestion_run_id": self.run_id,
            "seconds": round(self.seconds, 3),
        }


class _Totals:
    def __init__(self) -> None:
        self.read = self.added = self.updated = self.unchanged = self.rejected = 0

    def add(self, outcome: BatchOutcome) -> None:
        self.added += outcome.added
        self.updated += outcome.updated
        self.unchanged += outcome.unchanged
        self.rejected += outcome.rejected


def ingest_file(
    engine: Engine,
    dataset: Dataset | str,
    path: Path,
    *,
    rejections_dir: Path,
    report_path: Path | None = None,
    file_format: FileFormat | str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
) -> IngestionResult:
    """Load ``path`` into the reference store and record an ``IngestionRun``.

    The rejection report goes to ``report_path`` when given (created even when empty), else to
    ``<rejections_dir>/<dataset>-<UTC timestamp>.csv``, created only if a row is rejected.
    Raises :class:`~gateway.reference.ingest.formats.FileError`, with nothing written, when the
    file as a whole is unusable (format, header).
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
    dataset = Dataset(dataset)
    model = ROW_MODELS[dataset]
    loader = LOADERS[dataset]
    chosen_format = format_for(path, file_format)
    started_at = utcnow()
    clock = time.perf_counter()
    target = report_path or default_report_path(rejections_dir, dataset.value, started_at)
    if report_path is not None and _same_file(report_path, path):
        raise FileError("report.is_source", "the report would overwrite the file being loaded")
    totals = _Totals()

    with (
        SourceFile(path, chosen_format, model.columns) as source,
        _opened_report(target, explicit=report_path is not None) as report,
        engine.connect() as connection,
    ):
        rows: list[tuple[int, RowModel]] = []
        rejections: list[Rejection] = []

        def flush() -> None:
            outcome = _load_batch(connection, loader, rows)
            totals.add(outcome)
            report.write(rejections + outcome.rejections)
            rows.clear()
            rejections.clear()
            if on_progress is not None:
                on_progress(source.bytes_read, source.size)

        for record in source.records():
            totals.read += 1
            if record.error is not None:
                rejections.append(Rejection.of(record.line, record.error))
                totals.rejected += 1
            else:
                try:
                    rows.append((record.line, model.model_validate(record.values)))
                except ValidationError as exc:
                    rejections.extend(Rejection.of(record.line, e) for e in row_errors(exc))
                    totals.rejected += 1
            if len(rows) + len(rejections) >= batch_size:
                flush()
        flush()

        finished_at = utcnow()
        with connection.begin():
            run_id = connection.execute(
                insert(IngestionRun).returning(IngestionRun.id),
                {
                    "dataset": dataset.value,
                    "source_name": path.name[:255],
                    "source_sha256": source.sha256,
                    "started_at": started_at,
                    "finished_at": finished_at,
                    "rows_read": totals.read,
                    "rows_added": totals.added,
                    "rows_updated": totals.updated,
                    "rows_unchanged": totals.unchanged,
                    "rows_rejected": totals.rejected,
                },
            ).scalar_one()
        sha256 = source.sha256

    log.info(
        "reference_ingested",
        dataset=dataset.value,
        source=path.name,
        ingestion_run_id=run_id,
        read=totals.read,
        added=totals.added,
        updated=totals.updated,
        unchanged=totals.unchanged,
        rejected=totals.rejected,
    )
    return IngestionResult(
        dataset=dataset,
        source_name=path.name,
        source_sha256=sha256,
        read=totals.read,
        added=totals.added,
        updated=totals.updated,
        unchanged=totals.unchanged,
        rejected=totals.rejected,
        report_path=target if report.written else None,
        run_id=run_id,
        seconds=time.perf_counter() - clock,
    )


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.resolve() == second.resolve()
    except OSError:
        return False


def _opened_report(path: Path, *, explicit: bool) -> RejectionReport:
    """The report, with an explicit path opened at once: a bad one fails before any load."""
    report = RejectionReport(path, always=explicit)
    if explicit:
        try:
            report.open()
        except OSError as exc:
            raise FileError(
                "report.unwritable", f"cannot write the report: {exc.strerror}"
            ) from None
    return report


def _load_batch(
    connection: Connection, loader: Loader, rows: list[tuple[int, RowModel]]
) -> BatchOutcome:
    if not rows:
        return BatchOutcome()
    try:
        with connection.begin():
            return loader(connection, rows, utcnow())
    except (IntegrityError, DataError):
        pass
    # The batch was rolled back: replay it one row per transaction so that only the rows
    # the database refuses are lost, and each is reported.
    outcome = BatchOutcome()
    for line, row in rows:
        try:
            with connection.begin():
                single = loader(connection, [(line, row)], utcnow())
        except (IntegrityError, DataError):
            outcome.reject(
                line, "", "row.refused", "the database refused this row (a constraint failed)"
            )
            continue
        outcome.added += single.added
        outcome.updated += single.updated
        outcome.unchanged += single.unchanged
        outcome.rejections.extend(single.rejections)
    return outcome
