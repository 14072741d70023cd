"""Ingestion: load 1,000,000 turnover rows with ``gateway ingest turnover``; rows/s, peak RSS.

    python -m benchmarks.ingest [--backend postgresql|sqlite]

The file is what an upstream extract looks like: CSV, sorted by SIREN then period, ten monthly
declarations (2015-01 to 2015-10, periods the store does not hold yet) for each of the 100,000
seeded people, amounts with cents and a declaration time in the month after the period. The
command runs in its own process, as an operator would run it; its wall time and its peak
resident memory (``ru_maxrss`` of that process, from the kernel) are reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks.common import (
    GATEWAY,
    SEED,
    Workspace,
    add_common_arguments,
    count,
    emit,
    log,
    machine,
    prepare_reference_store,
    run_measured,
    wait_for_quiet_machine,
    workspace,
)
from gateway.reference.models import Account, TurnoverDeclaration

ROWS = 1_000_000
MONTHS = [f"2015-{month:02d}" for month in range(1, 11)]


def write_file(space: Workspace, path: Path) -> int:
    with space.engine.connect() as conn:
        sirens = sorted(conn.execute(select(Account.siren)).scalars())
    per_person = -(-ROWS // len(sirens))
    rng = random.Random(SEED)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as output:
        writer = csv.writer(output)
        writer.writerow(
            ["siren", "period", "sales_bic", "services_bic", "services_bnc", "declared_at"]
        )
        for siren in sirens:
            for period in MONTHS[:per_person]:
                if written == ROWS:
                    return written
                month = int(period[5:7])
                sales = rng.randrange(0, 500_000) / 100
                services = rng.randrange(0, 300_000) / 100
                writer.writerow(
                    [
                        siren,
                        period,
                        f"{sales:.2f}",
                        f"{services:.2f}",
                        "0.00",
                        f"2015-{month + 1:02d}-{rng.randint(1, 28):02d}T"
                        f"{rng.randint(7, 22):02d}:{rng.randint(0, 59):02d}:00Z",
                    ]
                )
                written += 1
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"scenario": "ingest", "machine": machine()}
    with workspace(args) as space:
        results["backend"] = space.backend
        results["data"] = prepare_reference_store(space, args.persons)
        path = space.folder / "turnover-1m.csv"
        rows = write_file(space, path)
        log(f"wrote {rows:,} rows ({path.stat().st_size / 2**20:.0f} MiB)")
        space.make_durable()
        results["database_settings"] = space.database_settings()
        before = count(space.engine, TurnoverDeclaration)
        other_work = wait_for_quiet_machine(args.quiet_wait)
        log("ingesting")
        command = [GATEWAY, "ingest", "turnover", str(path), "--json"]
        measured = run_measured(command, space.env("http://127.0.0.1:8000"), space.folder)
        if measured.returncode != 0:
            raise RuntimeError(f"ingest failed: {measured.stderr[-3000:]}")
        summary = json.loads(measured.stdout.strip().splitlines()[-1])
        added = count(space.engine, TurnoverDeclaration) - before
        results["ingest"] = {
            "rows": rows,
            "file_mib": round(path.stat().st_size / 2**20, 1),
            "seconds": round(measured.seconds, 1),
            "rows_per_second": round(rows / measured.seconds, 1),
            "peak_rss_mib": round(measured.max_rss_mib, 1),
            "rows_added": added,
            "command_summary": summary,
            "other_work_before_run_cores": other_work,
        }
        log(f"{rows:,} rows in {measured.seconds:.1f} s, peak RSS {measured.max_rss_mib:.0f} MiB")
    emit(results, args)


if __name__ == "__main__":
    main()
