"""Ingestion streams: its memory peak does not depend on the size of the file."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from gateway.database import Database, utcnow
from gateway.identifiers import nir_with_key, siren_with_checksum
from gateway.reference.ingest import ingest_file
from gateway.reference.models import Account

ACCOUNTS = 500
PERIODS = 240  # twenty years of months: each account's rows are contiguous, as upstream sorts
# Tracing allocations slows Python down about eightfold, so the files are kept small; small
# batches keep the per-batch peak low, which makes any growth with the file's size stand out.
BATCH = 500


@pytest.fixture
def sirens(db: Database) -> list[str]:
    now = utcnow()
    sirens = [siren_with_checksum(f"{41_000_000 + index:08d}") for index in range(ACCOUNTS)]
    with db.sync_engine.begin() as connection:
        connection.execute(
            insert(Account),
            [
                {
                    "nir": nir_with_key(f"2850575{index:06d}"),
                    "siren": siren,
                    "category": "artisan",
                    "regime": "micro",
                    "affiliation_date": dt.date(2000, 1, 1),
                    "created_at": now,
                    "updated_at": now,
                }
                for index, siren in enumerate(sirens)
            ],
        )
    return sirens


def _turnover_file(path: Path, sirens: list[str], first: int, count: int) -> Path:
    """Rows ``first`` to ``first + count`` of one long sequence: keys never repeat across files."""
    with path.open("w", encoding="utf-8") as file:
        file.write("siren,period,sales_bic,services_bic,services_bnc,declared_at\n")
        for index in range(first, first + count):
            account, month = divmod(index, PERIODS)
            # Past the last account, the same accounts declare again one second later.
            second = account // len(sirens)
            file.write(
                f"{sirens[account % len(sirens)]},{2000 + month // 12}-{month % 12 + 1:02d},"
                f"{index % 9973}.25,0,{index % 101},2026-01-01T10:00:{second:02d}\n"
            )
    return path


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


def _peak_while_ingesting(db: Database, path: Path, tmp_path: Path) -> int:
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    result = ingest_file(
        db.sync_engine, "turnover", path, rejections_dir=tmp_path, batch_size=BATCH
    )
    assert result.rejected == 0
    assert result.added == result.read
    return tracemalloc.get_traced_memory()[1] - baseline


def test_peak_memory_does_not_grow_with_the_file(
    db: Database, sirens: list[str], tmp_path: Path, traced: None
) -> None:
    """If rows, keys or report lines were kept for the whole file, 5x the rows would show."""
    warm_up = _turnover_file(tmp_path / "warm.csv", sirens, 0, 2_000)
    small = _turnover_file(tmp_path / "small.csv", sirens, 2_000, 3_000)
    large = _turnover_file(tmp_path / "large.csv", sirens, 5_000, 15_000)
    # Caches (compiled statements, result metadata, parsed SIRENs) fill once per process;
    # the second pass over the warm-up file also exercises the path that finds stored rows.
    _peak_while_ingesting(db, warm_up, tmp_path)
    ingest_file(db.sync_engine, "turnover", warm_up, rejections_dir=tmp_path, batch_size=BATCH)

    small_peak = _peak_while_ingesting(db, small, tmp_path)
    large_peak = _peak_while_ingesting(db, large, tmp_path)

    assert large_peak <= small_peak * 1.2, (small_peak, large_peak)
