"""Console search on a large trail: the first page of a partner's month among 1,000,000 records.

    python -m benchmarks.console_search [--records 1000000] [--repeat 30]

Starts a throwaway PostgreSQL cluster (``scripts/pg-throwaway``), migrates it, and loads the
audit trail with COPY: ``--records`` records (one subject each) spread evenly over 2025, from
twelve partners, mostly granted. COPY inserts, which the append-only triggers allow (they
refuse UPDATE, DELETE and TRUNCATE); the records are queued for sealing but not sealed, which
the search does not need. Then it times the console's own search function
(``gateway.console.service.search_page``, the one the page calls, partner names included):
the first page of one partner's month, its second page, the first page without filters, and
the first page of one person's records, each ``--repeat`` times on a warm connection after one
cold run. It prints the figures as JSON and the query plan of the first case.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import random
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy.dialects import postgresql

from benchmarks.common import ROOT, emit, log, machine, percentile
from gateway.console.repository import search_query
from gateway.console.schemas import AuditFilters, SubjectFilter, SubjectPseudonym
from gateway.console.service import Page, search_page
from gateway.database import Database, driver_urls
from gateway.migrate import upgrade

PARTNERS = 12
YEAR = 2025
TARGET_MS = 300.0
ZONE = ZoneInfo("Europe/Paris")
CONNECTORS = (("turnover", 2), ("turnover", 1), ("status", 1), ("cfp", 1), ("acre", 1))
PURPOSES = ("RSA_INSTRUCTION", "JOB_SEEKING", "HEALTH_COVER", "TRAINING_FUNDING")
RECORD_COLUMNS = (
    "id, occurred_at, request_id, client_id, partner_id, connector, connector_version, "
    "operation, purpose, recipient, legal_basis, case_reference, outcome, reason_code, "
    "http_status, response_sha256, latency_us"
)


def pseudonym(person: int) -> str:
    return hashlib.sha256(f"person-{person}".encode()).hexdigest()


def _lines(first: int, last: int, rng: random.Random) -> tuple[str, str, str]:
    """COPY text of records ``first..last`` (ids), their subjects and their queue entries."""
    start = dt.datetime(YEAR, 1, 1, tzinfo=dt.UTC).timestamp()
    span = dt.datetime(YEAR + 1, 1, 1, tzinfo=dt.UTC).timestamp() - start
    records, subjects, pending = [], [], []
    for record_id in range(first, last + 1):
        occurred = dt.datetime.fromtimestamp(start + rng.random() * span, dt.UTC).isoformat()
        partner = rng.randrange(1, PARTNERS + 1)
        connector, version = rng.choice(CONNECTORS)
        granted = rng.random() < 0.9
        records.append(
            "\t".join(
                (
                    str(record_id),
                    occurred,
                    f"bench-{record_id}",
                    f"partner-{partner}-client",
                    str(partner),
                    connector,
                    str(version),
                    f"get_{connector}",
                    rng.choice(PURPOSES),
                    "21750001600019",
                    "Code de la sécurité sociale, art. L. 114-8",
                    f"DOSSIER-{record_id}",
                    "granted" if granted else "refused",
                    "\\N" if granted else "purpose.not_allowed",
                    "200" if granted else "403",
                    hashlib.sha256(str(record_id).encode()).hexdigest(),
                    str(rng.randrange(800, 20_000)),
                )
            )
        )
        subjects.append(
            f"{record_id}\tsiren\t{pseudonym(rng.randrange(200_000))}\tpk-bench\t{occurred}"
        )
        pending.append(str(record_id))
    return (
        "\n".join(records) + "\n",
        "\n".join(subjects) + "\n",
        "\n".join(pending) + "\n",
    )


def load(url: str, records: int, seed: int) -> float:
    """COPY ``records`` records into the trail; returns the seconds it took."""
    sync_url, _ = driver_urls(url)
    plain = sync_url.set(drivername="postgresql").render_as_string(hide_password=False)
    rng = random.Random(seed)
    started = time.perf_counter()
    chunk = 100_000
    with psycopg.connect(plain, autocommit=False) as conn:
        for first in range(1, records + 1, chunk):
            last = min(records, first + chunk - 1)
            record_text, subject_text, pending_text = _lines(first, last, rng)
            with conn.cursor() as cursor:
                for statement, payload in (
                    (f"COPY audit_record ({RECORD_COLUMNS}) FROM STDIN", record_text),
                    (
                        "COPY audit_subject (record_id, subject_kind, pseudonym, key_id, "
                        "occurred_at) FROM STDIN",
                        subject_text,
                    ),
                    ("COPY audit_pending (record_id) FROM STDIN", pending_text),
                ):
                    with cursor.copy(statement) as copy:
                        copy.write(payload.encode())
            conn.commit()
            log(f"loaded {last:,} records")
        with conn.cursor() as cursor:
            # Explicit ids were given: the sequence must follow for later inserts.
            cursor.execute("SELECT setval('audit_record_id_seq', %s)", (records,))
            cursor.execute("SELECT setval('audit_subject_id_seq', %s)", (records,))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE audit_record")
        conn.execute("VACUUM ANALYZE audit_subject")
        conn.execute("VACUUM ANALYZE audit_pending")
    return time.perf_counter() - started


async def timed(call: Callable[[], Awaitable[Page]], repeat: int) -> tuple[dict[str, Any], Page]:
    started = time.perf_counter()
    page = await call()
    cold = (time.perf_counter() - started) * 1000
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        page = await call()
        warm.append((time.perf_counter() - started) * 1000)
    figures = {
        "rows": len(page.records),
        "cold_ms": round(cold, 1),
        "median_ms": round(percentile(warm, 0.5), 1),
        "p95_ms": round(percentile(warm, 0.95), 1),
        "max_ms": round(max(warm), 1),
    }
    return figures, page


def explain(url: str, filters: AuditFilters) -> list[str]:
    statement = search_query(filters, ZONE, after=None, limit=51).compile(
        dialect=postgresql.dialect(paramstyle="pyformat")  # type: ignore[no-untyped-call]
    )
    sync_url, _ = driver_urls(url)
    plain = sync_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn, conn.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + str(statement),
            statement.params,
        )
        return [row[0] for row in cursor.fetchall()]


async def measure(url: str, repeat: int) -> dict[str, Any]:
    db = Database(url)
    month = AuditFilters(partner_id=3, date_from=dt.date(YEAR, 3, 1), date_to=dt.date(YEAR, 3, 31))
    person = AuditFilters(
        subject=SubjectFilter(
            typed="siren",
            identifiers=1,
            pseudonyms=(
                SubjectPseudonym(kind="siren", pseudonym=pseudonym(4242), key_id="pk-bench"),
            ),
        )
    )
    results: dict[str, Any] = {}
    try:
        results["partner_month_first_page"], first = await timed(
            lambda: search_page(db, month, ZONE), repeat
        )
        cursor = first.next_cursor
        results["partner_month_second_page"], _ = await timed(
            lambda: search_page(db, month, ZONE, after=cursor), repeat
        )
        results["no_filter_first_page"], _ = await timed(
            lambda: search_page(db, AuditFilters(), ZONE), repeat
        )
        results["one_person_first_page"], _ = await timed(
            lambda: search_page(db, person, ZONE), repeat
        )
    finally:
        await db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30, help="warm runs of each query")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = subprocess.run(
        [str(ROOT / "scripts" / "pg-throwaway"), "start"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    folder, url = started[0], started[1]
    try:
        log(f"PostgreSQL at {url}; migrating")
        upgrade(url)
        log(f"loading {args.records:,} audit records")
        load_seconds = load(url, args.records, args.seed)
        log("measuring the console's search")
        figures = asyncio.run(measure(url, args.repeat))
        plan = explain(
            url,
            AuditFilters(partner_id=3, date_from=dt.date(YEAR, 3, 1), date_to=dt.date(YEAR, 3, 31)),
        )
    finally:
        subprocess.run([str(ROOT / "scripts" / "pg-throwaway"), "stop", folder], check=False)
    first_page = figures["partner_month_first_page"]
    emit(
        {
            "benchmark": "console_search",
            "machine": machine(),
            "records": args.records,
            "load_seconds": round(load_seconds, 1),
            "target_ms": TARGET_MS,
            "meets_target": first_page["cold_ms"] < TARGET_MS and first_page["max_ms"] < TARGET_MS,
            "figures": figures,
            "plan": plan,
        },
        argparse.Namespace(json_out=None),
    )


if __name__ == "__main__":
    main()
