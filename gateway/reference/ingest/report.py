"""The rejection report: one CSV line per problem found in a rejected row.

Columns ``line,field,code,reason``: the physical line number in the source file (its header is
line 1), the field at fault (empty for a whole-line problem), a stable code and fixed text. No
value from the file is ever copied into it, and as a last guard anything shaped like a NIR is
masked on the way out: the report is meant to be mailed back to the sender, NIRs are not.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from gateway.identifiers import redact_nirs

__all__ = ["REPORT_COLUMNS", "Rejection", "RejectionReport", "RowError", "default_report_path"]

REPORT_COLUMNS = ("line", "field", "code", "reason")
# Spreadsheets run a cell starting with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one field of a row (or with the whole line when ``field`` is empty)."""

    field: str
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    field: str
    code: str
    reason: str

    @classmethod
    def of(cls, line: int, error: RowError) -> Rejection:
        return cls(line, error.field, error.code, error.reason)


def default_report_path(rejections_dir: Path, dataset: str, at: dt.datetime) -> Path:
    """``<dir>/<dataset>-<UTC timestamp>.csv``, suffixed when a report of that second exists."""
    stem = f"{dataset}-{at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
    path = rejections_dir / f"{stem}.csv"
    counter = 2
    while path.exists():
        path = rejections_dir / f"{stem}-{counter}.csv"
        counter += 1
    return path


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _safe(text: str) -> str:
    # Control characters go first, so that none can split a NIR to hide it from the mask.
    text = redact_nirs(_CONTROL.sub("", text))
    if text.startswith(_FORMULA_PREFIXES):
        text = "'" + text
    return text


class RejectionReport:
    """Writes rejections to ``path``; the file is created on the first write.

    With ``always`` the file is created even if nothing is rejected (an explicit ``--report``
    path, which a script may then read unconditionally).
    """

    def __init__(self, path: Path, *, always: bool = False) -> None:
        self.path = path
        self.always = always
        self.count = 0
        self._file: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None

    @property
    def written(self) -> bool:
        return self._file is not None

    def open(self) -> csv.DictWriter[str]:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.DictWriter(self._file, REPORT_COLUMNS, lineterminator="\n")
            self._writer.writeheader()
        return self._writer

    def write(self, rejections: list[Rejection]) -> None:
        if not rejections:
            return
        writer = self.open()
        for rejection in sorted(rejections, key=lambda item: item.line):
            writer.writerow(
                {
                    "line": rejection.line,
                    "field": _safe(rejection.field),
                    "code": _safe(rejection.code),
                    "reason": _safe(rejection.reason),
                }
            )
            self.count += 1

    def close(self) -> None:
        if self.always:
            self.open()
        if self._file is not None:
            self._file.close()

    def discard(self) -> None:
        """Close and delete the report: nothing was loaded, so there is nothing to report."""
        if self._file is not None:
            self._file.close()
            self.path.unlink(missing_ok=True)
        self._file = None
        self._writer = None

    def __enter__(self) -> RejectionReport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # A load that fails leaves no report behind: the error says what happened.
        if exc_type is not None:
            self.always = False
            if self.count == 0:
                self.discard()
                return
        self.close()
