"""Loading upstream files into the reference store.

The public surface is :func:`ingest_file` and the names it uses; the modules behind it each
hold one concern: ``formats`` (streaming CSV / JSON Lines reader), ``rows`` (a pydantic model
per dataset and the report codes of its errors), ``loader`` (batched writes per dataset),
``report`` (the rejection report) and ``pipeline`` (one file from start to end).
"""

from gateway.reference.ingest.formats import FileError, FileFormat
from gateway.reference.ingest.pipeline import (
    DEFAULT_BATCH_SIZE,
    IngestionResult,
    ProgressCallback,
    ingest_file,
)
from gateway.reference.ingest.report import REPORT_COLUMNS
from gateway.reference.ingest.rows import ROW_MODELS, Dataset

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "REPORT_COLUMNS",
    "ROW_MODELS",
    "Dataset",
    "FileError",
    "FileFormat",
    "IngestionResult",
    "ProgressCallback",
    "ingest_file",
]
