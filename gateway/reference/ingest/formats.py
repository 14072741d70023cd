"""Streaming readers for upstream files: CSV with a header line, or JSON Lines.

A file is read line by line in binary, so memory stays flat whatever its size, the bytes read
drive a progress bar, and the SHA-256 recorded for the load covers exactly what was read.
Each record carries its physical line number (the header is line 1) for the rejection report.

Only the header can fail a whole file (:class:`FileError`); anything wrong inside a line (bad
encoding, an overlong line, broken JSON, extra CSV values) becomes a record with an error and
the reading goes on.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from gateway.identifiers import redact_nirs
from gateway.reference.ingest.report import RowError

__all__ = [
    "MAX_LINE_BYTES",
    "FileError",
    "FileFormat",
    "Record",
    "SourceFile",
    "format_for",
]

# Far above any real record; a longer line is rejected instead of being held in memory.
MAX_LINE_BYTES = 64 * 1024
_CHUNK_BYTES = 1024 * 1024


class FileFormat(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


_EXTENSIONS = {".csv": FileFormat.CSV, ".jsonl": FileFormat.JSONL, ".ndjson": FileFormat.JSONL}


class FileError(Exception):
    """The whole file is refused before anything is written (unreadable, bad header...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Record:
    """One data record: its values (empty ones left out) or why the line could not be read."""

    line: int
    values: dict[str, object]
    error: RowError | None = None


def format_for(path: Path, override: FileFormat | str | None = None) -> FileFormat:
    if override is not None:
        try:
            return FileFormat(str(override).lower())
        except ValueError:
            raise FileError("file.unknown_format", "the format must be csv or jsonl") from None
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise FileError(
            "file.unknown_format",
            f"cannot tell the format of {_printable(path.name)!r} from its extension "
            "(.csv, .jsonl, .ndjson): pass --format csv or --format jsonl",
        )
    return found


def _printable(text: str, limit: int = 60) -> str:
    """Text from the file, safe to show: NIR-shaped parts masked, length capped."""
    masked = redact_nirs(text)
    return masked if len(masked) <= limit else masked[: limit - 3] + "..."


def _normalise(value: object) -> object | None:
    """Trimmed value, or None when the field is empty (an empty field counts as absent)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class SourceFile:
    """An upstream file opened for one pass; use as a context manager.

    ``columns`` are the dataset's fields. Opening a CSV file reads and checks its header at
    once, so that a bad header fails the file before any row is loaded.
    """

    def __init__(self, path: Path, file_format: FileFormat, columns: Sequence[str]) -> None:
        self.path = path
        self.format = file_format
        self.columns = tuple(columns)
        self.bytes_read = 0
        self.line = 0
        self._digest = hashlib.sha256()
        self._pending: list[Record] = []
        # One line source for both formats; the CSV reader pulls from it only for CSV files.
        self._lines = self._text_lines()
        self._reader = csv.reader(self._lines, strict=True)
        try:
            self._file: BinaryIO = path.open("rb")
        except OSError as exc:
            raise FileError(
                "file.unreadable", f"cannot read {_printable(path.name)!r}: {exc.strerror}"
            ) from None
        try:
            self.size = path.stat().st_size
            self._header: tuple[str, ...] = self._read_header() if file_format == "csv" else ()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> SourceFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._file.close()

    @property
    def sha256(self) -> str:
        """Digest of the bytes read so far: of the whole file once :meth:`records` is done."""
        return self._digest.hexdigest()

    def records(self) -> Iterator[Record]:
        if self.format == FileFormat.CSV:
            yield from self._csv_records()
        else:
            yield from self._jsonl_records()
        # Hash whatever a reader left unread (nothing, normally) so the digest is the file's.
        while chunk := self._file.read(_CHUNK_BYTES):
            self._digest.update(chunk)
            self.bytes_read += len(chunk)

    # --- lines -----------------------------------------------------------------------------

    def _raw_lines(self) -> Iterator[bytes | None]:
        """Each physical line in bytes, or None for a line too long to keep."""
        while True:
            chunk = self._file.readline(MAX_LINE_BYTES + 1)
            if not chunk:
                return
            self._digest.update(chunk)
            self.bytes_read += len(chunk)
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                # Skip to the end of the line without keeping it.
                while chunk and not chunk.endswith(b"\n"):
                    chunk = self._file.readline(_CHUNK_BYTES)
                    self._digest.update(chunk)
                    self.bytes_read += len(chunk)
                self.line += 1
                yield None
                continue
            self.line += 1
            yield chunk

    def _text_lines(self) -> Iterator[str]:
        """Decoded lines; unreadable ones are queued as error records and read as blank."""
        for raw in self._raw_lines():
            if raw is None:
                self._pending.append(
                    Record(self.line, {}, RowError("", "row.too_long", "the line is too long"))
                )
                yield "\n"
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._pending.append(
                    Record(self.line, {}, RowError("", "row.encoding", "the line is not UTF-8"))
                )
                yield "\n"
                continue
            if self.line == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield text

    # --- CSV -------------------------------------------------------------------------------

    def _read_header(self) -> tuple[str, ...]:
        try:
            header_row = next(self._reader, None)
        except csv.Error:
            raise FileError("file.bad_header", "the header line is not valid CSV") from None
        if self._pending:
            reason = self._pending[0].error.reason if self._pending[0].error else "unreadable"
            raise FileError("file.bad_header", f"the header line cannot be read: {reason}")
        names = tuple(name.strip() for name in header_row or ())
        if not any(names):
            raise FileError("file.no_header", "the file has no header line (line 1 is empty)")
        expected = set(self.columns)
        unknown = [name for name in names if name not in expected]
        missing = [name for name in self.columns if name not in names]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        problems = []
        if unknown:
            problems.append("unknown column(s): " + ", ".join(_printable(n) for n in unknown))
        if missing:
            problems.append("missing column(s): " + ", ".join(missing))
        if duplicated:
            problems.append("repeated column(s): " + ", ".join(_printable(n) for n in duplicated))
        if problems:
            raise FileError(
                "file.bad_header",
                "; ".join(problems) + f" (expected: {', '.join(self.columns)})",
            )
        return names

    def _csv_records(self) -> Iterator[Record]:
        header = self._header
        width = len(header)
        reader = self._reader
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader, None)
            except csv.Error:
                yield from self._drain_pending()
                yield Record(
                    start, {}, RowError("", "row.unparseable", "the line is not valid CSV")
                )
                continue
            if self._pending:
                yield from self._drain_pending()
            if values is None:
                return
            row: dict[str, object] = {}
            for name, raw in zip(header, values, strict=False):
                value = raw.strip()
                if value:
                    row[name] = value
            if len(values) > width:
                if any(value.strip() for value in values[width:]):
                    yield Record(
                        start,
                        {},
                        RowError(
                            "", "row.extra_values", "the line has more values than the header"
                        ),
                    )
                    continue
            elif not row:
                continue  # a blank line
            yield Record(start, row)

    def _drain_pending(self) -> Iterator[Record]:
        pending, self._pending = self._pending, []
        yield from pending

    # --- JSON Lines ------------------------------------------------------------------------

    def _jsonl_records(self) -> Iterator[Record]:
        for text in self._lines:
            if self._pending:
                yield from self._drain_pending()
                continue
            if not text.strip():
                continue
            try:
                document = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
            except (ValueError, RecursionError):
                yield Record(self.line, {}, RowError("", "row.unparseable", "the line is not JSON"))
                continue
            if not isinstance(document, dict):
                yield Record(
                    self.line,
                    {},
                    RowError("", "row.unparseable", "the line must hold one JSON object"),
                )
                continue
            row: dict[str, object] = {}
            for key, raw in document.items():
                value = _normalise(raw)
                if value is not None:
                    row[key] = value
            yield Record(self.line, row)
        yield from self._drain_pending()


def _no_constant(name: str) -> object:
    # NaN and Infinity are not JSON; Python's parser would accept them by default.
    raise ValueError(name)
