"""The streaming readers: header checks, physical line numbers, lines that cannot be read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.identifiers import NIR_SHAPE, nir_with_key
from gateway.reference.ingest.formats import (
    MAX_LINE_BYTES,
    FileError,
    FileFormat,
    Record,
    SourceFile,
    format_for,
)

COLUMNS = ("siren", "event", "effective_date", "detail")


def _records(path: Path, file_format: FileFormat = FileFormat.CSV) -> list[Record]:
    with SourceFile(path, file_format, COLUMNS) as source:
        records = list(source.records())
        assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert source.bytes_read == path.stat().st_size
    return records


def _event(siren: str, effective_date: str, detail: str) -> dict[str, object]:
    return {
        "siren": siren,
        "event": "radiation",
        "effective_date": effective_date,
        "detail": detail,
    }


def _summary(records: list[Record]) -> list[tuple[int, object]]:
    return [(r.line, r.error.code if r.error else r.values) for r in records]


def test_format_comes_from_the_extension_unless_overridden(tmp_path: Path) -> None:
    assert format_for(Path("a.CSV")) == FileFormat.CSV
    assert format_for(Path("a.jsonl")) == FileFormat.JSONL
    assert format_for(Path("a.ndjson")) == FileFormat.JSONL
    assert format_for(Path("a.txt"), "csv") == FileFormat.CSV
    with pytest.raises(FileError, match="--format") as caught:
        format_for(Path("a.txt"))
    assert caught.value.code == "file.unknown_format"
    with pytest.raises(FileError):
        format_for(Path("a.csv"), "xml")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("siren,event,effective_date,detail,comment", "unknown column(s): comment"),
        ("siren,event,effective_date", "missing column(s): detail"),
        ("siren,event,effective_date,detail,siren", "repeated column(s): siren"),
        ("", "no header line"),
        ('siren,"event,effective_date,detail', "not valid CSV"),
    ],
)
def test_a_bad_header_fails_the_whole_file(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "events.csv"
    path.write_text(header + "\n123456782,radiation,2026-01-01,x\n", encoding="utf-8")
    with pytest.raises(FileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SourceFile(path, FileFormat.CSV, COLUMNS)


def test_a_header_error_never_echoes_a_nir(tmp_path: Path) -> None:
    nir = nir_with_key("1850775123456")
    path = tmp_path / "events.csv"
    path.write_text(f"siren,event,effective_date,detail,{nir}\n", encoding="utf-8")
    with pytest.raises(FileError) as caught:
        SourceFile(path, FileFormat.CSV, COLUMNS)
    assert NIR_SHAPE.search(caught.value.message) is None
    assert "[NIR]" in caught.value.message


def test_csv_records_carry_their_physical_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"\xef\xbb\xbf siren , event,effective_date,detail\r\n"  # BOM, spaces, CRLF
        b"111,radiation,2026-01-01,plain\r\n"
        b"\r\n"  # blank: skipped, still counted as a line
        b'222,radiation,2026-01-02,"two\nlines"\n'  # one record over lines 4 and 5
        b"333,affiliation,2026-01-03,\n"  # empty detail: left out
        b"444,radiation,2026-01-04,x,extra\n"
        b"555,radiation,2026-01-05,x,,\n"  # trailing empty values are tolerated
        b"666,radiation,2026-01-06,caf\xe9\n"  # Latin-1, not UTF-8
        b"777,radiation\n"  # short: the missing fields are left out
    )

    records = _records(path)

    assert _summary(records) == [
        (2, _event("111", "2026-01-01", "plain")),
        (4, _event("222", "2026-01-02", "two\nlines")),
        (6, {"siren": "333", "event": "affiliation", "effective_date": "2026-01-03"}),
        (7, "row.extra_values"),
        (8, _event("555", "2026-01-05", "x")),
        (9, "row.encoding"),
        (10, {"siren": "777", "event": "radiation"}),
    ]


def test_a_broken_csv_line_is_one_bad_record_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"siren,event,effective_date,detail\n"
        b'111,radiation,2026-01-01,"bad"quote\n'
        b"333,radiation,2026-01-03,fine\n"
    )

    records = _records(path)

    assert [(r.line, r.error.code if r.error else r.values["siren"]) for r in records] == [
        (2, "row.unparseable"),
        (3, "333"),
    ]


def test_an_overlong_line_is_rejected_without_being_kept(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    with path.open("wb") as file:
        file.write(b"siren,event,effective_date,detail\n")
        file.write(b"111,radiation,2026-01-01," + b"x" * (3 * MAX_LINE_BYTES) + b"\n")
        file.write(b"222,radiation,2026-01-02,ok\n")
    jsonl = tmp_path / "events.jsonl"
    with jsonl.open("wb") as file:
        file.write(b'{"siren": "' + b"1" * (2 * MAX_LINE_BYTES) + b'"}\n')
        file.write(b'{"siren": "222"}\n')

    assert _summary(_records(path)) == [
        (2, "row.too_long"),
        (3, _event("222", "2026-01-02", "ok")),
    ]
    assert _summary(_records(jsonl, FileFormat.JSONL)) == [
        (1, "row.too_long"),
        (2, {"siren": "222"}),
    ]


def test_jsonl_records(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b'{"siren": "111", "detail": "", "event": null, "amount": 1.50}\n'
        b"\n"
        b"   \n"
        b"not json\n"
        b"[1, 2]\n"
        b'{"siren": NaN}\n'
        b"\xff\xfe\n"
        + b"[" * 30_000  # nested beyond the parser's recursion limit
        + b'\n{"siren": "222"}'  # no final newline
    )

    records = _records(path, FileFormat.JSONL)

    assert _summary(records) == [
        (1, {"siren": "111", "amount": records[0].values["amount"]}),
        (4, "row.unparseable"),
        (5, "row.unparseable"),
        (6, "row.unparseable"),
        (7, "row.encoding"),
        (8, "row.unparseable"),
        (9, {"siren": "222"}),
    ]
    assert str(records[0].values["amount"]) == "1.50"  # decimals are never floats


def test_an_unreadable_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(FileError) as caught:
        SourceFile(tmp_path / "missing.csv", FileFormat.CSV, COLUMNS)
    assert caught.value.code == "file.unreadable"
