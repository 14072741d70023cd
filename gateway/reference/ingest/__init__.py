"""Loading upstream files into the reference store.

The public surface is :func:`ingest_file` and the names it uses; the modules behind it each
hold one concern: ``formats`` (streaming CSV / JSON Lines reader), ``rows`` (a pydantic model
per dataset and the report codes of its errors), ``loader`` (batched writes per dataset),
``report`` (the rejection report) and ``pipeline`` (one file from start to end).

Codes of the rejection report (``line,field,code,reason``), stable for senders to act on:

- the line: ``row.unparseable`` (not CSV / not a JSON object), ``row.encoding`` (not UTF-8),
  ``row.too_long``, ``row.extra_values`` (more CSV values than header columns);
- a field: ``field.missing``, ``field.unknown`` (a JSON key outside the dataset),
  ``field.invalid``; ``nir.malformed``, ``nir.bad_key``, ``siren.malformed``,
  ``siren.bad_checksum``; ``date.malformed``, ``datetime.malformed``, ``period.malformed``,
  ``year.malformed``, ``year.out_of_range``; ``amount.malformed``, ``amount.negative``,
  ``amount.too_precise`` (more than 2 decimals), ``amount.too_large``, and the same four for
  ``rate`` (3 decimals, at most 100); ``category.unknown``, ``regime.unknown``,
  ``event.unknown``, ``detail.missing``, ``detail.not_a_regime``, ``text.malformed``,
  ``text.too_long``;
- against the store: ``siren.unknown`` (no such account), ``nir.conflict`` and
  ``siren.conflict`` (the pair belongs to other accounts), ``row.conflict`` (same key, other
  values), ``row.refused`` (a database constraint refused the row).

File-level errors (:class:`FileError`, nothing loaded): ``file.unknown_format``,
``file.unreadable``, ``file.no_header``, ``file.bad_header``, ``report.is_source``,
``report.unwritable``.
"""

from gateway.reference.ingest.formats import FileError, FileFormat
from gateway.reference.ingest.pipeline import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    IngestionResult,
    ProgressCallback,
    ingest_file,
)
from gateway.reference.ingest.report import REPORT_COLUMNS
from gateway.reference.ingest.rows import ROW_MODELS, Dataset

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MAX_BATCH_SIZE",
    "REPORT_COLUMNS",
    "ROW_MODELS",
    "Dataset",
    "FileError",
    "FileFormat",
    "IngestionResult",
    "ProgressCallback",
    "ingest_file",
]
