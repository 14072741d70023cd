"""Audit at scale: a trail of 10,000,000 records; sealing and ``gateway audit verify`` rates.

    python -m benchmarks.audit_scale [--records 10000000] [--fresh 500000]

The trail is what a year of traffic leaves (PostgreSQL only: see RESULTS.md for SQLite):

1. ``--records`` records spread evenly over the twelve months before now, from ten partners
   (each a registered partner with its client), over the three lookup operations, 2 % of them
   ``not_found``; each with one subject whose pseudonym is the HMAC, under the active pseudonym
   key, of one of the seeded people's SIREN, as the pipeline writes it. Rows are made by SQL
   (``generate_series``), which the append-only triggers allow: they refuse updates, not
   inserts.
2. That history is sealed by the sealer's own code (``run_sealer_once``) in batches of 5,000,
   each batch queued and sealed in record order with the clock set to just after its last
   record, as the server's sealer would have done during the year: the signed checkpoints are
   dated within the history, so ``verify``'s back-dating check holds.
3. ``--fresh`` more records dated now are queued and sealed by ``gateway audit seal`` in its
   own process: the sealing rate of the command.
4. ``gateway audit verify`` checks the whole trail in its own process: records per second.

``generate_history`` is reusable: ``benchmarks/console_search.py`` can build the same trail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

from sqlalchemy import func, select, text

from benchmarks.common import (
    GATEWAY,
    LEGAL_BASIS,
    PURPOSE,
    RECIPIENT,
    Workspace,
    add_common_arguments,
    emit,
    log,
    machine,
    prepare_reference_store,
    register_partner,
    run_measured,
    wait_for_quiet_machine,
    workspace,
)
from gateway.audit import sealer
from gateway.audit.models import AuditRecord
from gateway.audit.pseudonym import Pseudonymiser
from gateway.audit.signing import gateway_checkpoint_signer
from gateway.reference.models import Account

PARTNERS = (
    ("CAF", "caf", "turnover:read"),
    ("Pôle emploi", "pole-emploi", "turnover:read"),
    ("CNAM", "cnam", "status:read"),
    ("CAF Réunion", "caf", "status:read"),
    ("MSA", "caf", "turnover:read"),
    ("AGEFICE", "training-fund", "cfp:read"),
    ("FAFCEA", "training-fund", "cfp:read"),
    ("FIF-PL", "training-fund", "cfp:read"),
    ("CNAV", "cnam", "status:read"),
    ("Département 93", "caf", "turnover:read"),
)
SEAL_BATCH = 5000
GENERATE_CHUNK = 500_000

_RECORDS_SQL = """
INSERT INTO audit_record (occurred_at, request_id, client_id, partner_id, connector,
    connector_version, operation, purpose, recipient, legal_basis, outcome, reason_code,
    http_status, response_sha256, latency_us)
SELECT CAST(:start AS timestamptz) + (g - 1) * CAST(:step AS interval),
    md5('request' || g), p.client_id, p.partner_id,
    (ARRAY['turnover', 'status', 'cfp'])[1 + g % 3],
    CASE WHEN g % 3 = 0 THEN 2 ELSE 1 END,
    (ARRAY['turnover_by_siren', 'status_by_siren', 'get_attestation'])[1 + g % 3],
    :purpose, :recipient, :legal_basis,
    CASE WHEN g % 50 = 0 THEN 'not_found' ELSE 'granted' END,
    CASE WHEN g % 50 = 0 THEN 'subject.unknown' END,
    CASE WHEN g % 50 = 0 THEN 404 ELSE 200 END,
    md5('body' || g) || md5('more' || g),
    800 + (g * 37) % 9000
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
JOIN bench_partner p ON p.n = g % :partners
ORDER BY g
"""
_SUBJECTS_SQL = """
INSERT INTO audit_subject (record_id, subject_kind, pseudonym, key_id, occurred_at)
SELECT r.id, 'siren', s.pseudonym, :key_id, r.occurred_at
FROM audit_record r JOIN bench_pseudonym s ON s.n = (r.id * 7919) % :persons
WHERE r.id > :after
ORDER BY r.id
"""


def _setup_tables(space: Workspace, partners: list[tuple[int, str]]) -> tuple[str, int]:
    """Helper tables of partners and pseudonyms; returns the key id and the people count."""
    key_id, secret = Pseudonymiser(space.db, space.settings()).active_key_sync()
    with space.engine.connect() as conn:
        sirens = list(conn.execute(select(Account.siren).order_by(Account.id)).scalars())
    pseudonyms = [
        {"n": n, "pseudonym": hmac.new(secret, f"siren:{s}".encode(), hashlib.sha256).hexdigest()}
        for n, s in enumerate(sirens)
    ]
    with space.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_partner, bench_pseudonym"))
        conn.execute(
            text(
                "CREATE UNLOGGED TABLE bench_partner "
                "(n int PRIMARY KEY, partner_id int, client_id text)"
            )
        )
        conn.execute(
            text("CREATE UNLOGGED TABLE bench_pseudonym (n int PRIMARY KEY, pseudonym text)")
        )
        conn.execute(
            text("INSERT INTO bench_partner VALUES (:n, :partner_id, :client_id)"),
            [
                {"n": n, "partner_id": partner_id, "client_id": client_id}
                for n, (partner_id, client_id) in enumerate(partners)
            ],
        )
        conn.execute(text("INSERT INTO bench_pseudonym VALUES (:n, :pseudonym)"), pseudonyms)
    return key_id, len(sirens)


def register_partners(space: Workspace) -> list[tuple[int, str]]:
    """The ten partners of the trail, each with a client: (partner id, client id)."""
    from gateway.partners import service

    made = []
    for name, kind, scope in PARTNERS:
        client_id = register_partner(space, [scope], name=name, kind=kind).client_id
        with space.db.sync_session() as session:
            made.append((service.get_partner(session, name).id, client_id))
    return made


def generate_records(
    space: Workspace,
    partners: list[tuple[int, str]],
    count: int,
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[int, int]:
    """``count`` records evenly from ``start`` to ``end``, each with one subject.

    Returns the (first, last) record ids. The helper tables must exist (``_setup_tables``).
    """
    with space.engine.connect() as conn:
        key_id = conn.execute(
            text("SELECT key_id FROM audit_pseudonym_key WHERE active")
        ).scalar_one()
        persons = conn.execute(text("SELECT count(*) FROM bench_pseudonym")).scalar_one()
        after = conn.execute(select(func.coalesce(func.max(AuditRecord.id), 0))).scalar_one()
    step = (end - start) / count
    for first in range(1, count + 1, GENERATE_CHUNK):
        last = min(first + GENERATE_CHUNK - 1, count)
        with space.engine.begin() as conn:
            conn.execute(
                text(_RECORDS_SQL),
                {
                    "start": start,
                    "step": step,
                    "first": first,
                    "last": last,
                    "partners": len(partners),
                    "purpose": PURPOSE,
                    "recipient": RECIPIENT,
                    "legal_basis": LEGAL_BASIS,
                },
            )
            newest = conn.execute(select(func.max(AuditRecord.id))).scalar_one()
            conn.execute(
                text(_SUBJECTS_SQL),
                {"key_id": key_id, "persons": persons, "after": newest - (last - first + 1)},
            )
        log(f"generated {last:,} of {count:,} records")
    with space.engine.connect() as conn:
        autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.execute(text("ANALYZE audit_record"))
        autocommit.execute(text("ANALYZE audit_subject"))
    return after + 1, after + count


@contextmanager
def sealer_clock(moment: dt.datetime) -> Iterator[None]:
    with mock.patch.object(sealer, "utcnow", return_value=moment):
        yield


def seal_history(
    space: Workspace, first: int, last: int, budget: float = float("inf")
) -> dict[str, Any]:
    """Seal records ``first..last`` batch by batch, each signed when the batch would have been.

    Stops once ``budget`` seconds have been spent: ``last_sealed_id`` says where.
    """
    signer = gateway_checkpoint_signer(space.settings(), space.engine)
    started = time.perf_counter()
    sealing = 0.0
    sealed_up_to = first - 1
    for low in range(first, last + 1, SEAL_BATCH):
        if time.perf_counter() - started > budget:
            log(f"sealing budget spent: records {low:,} to {last:,} stay unsealed")
            break
        high = min(low + SEAL_BATCH - 1, last)
        with space.engine.begin() as conn:
            conn.execute(
                # An interrupted run may have queued this batch already.
                text(
                    "INSERT INTO audit_pending (record_id) SELECT id FROM audit_record "
                    "WHERE id BETWEEN :low AND :high ON CONFLICT DO NOTHING"
                ),
                {"low": low, "high": high},
            )
            # Records are dated in id order: the batch's last record is its newest. (A max()
            # over the range makes PostgreSQL walk the occurred_at index from the other end.)
            newest = conn.execute(
                select(AuditRecord.occurred_at).where(AuditRecord.id == high)
            ).scalar_one()
        moment = newest + dt.timedelta(seconds=1)
        began = time.perf_counter()
        with sealer_clock(moment):
            result = sealer.run_sealer_once(space.engine, signer, batch_size=SEAL_BATCH)
        sealing += time.perf_counter() - began
        if result.sealed != high - low + 1:
            raise RuntimeError(f"sealed {result.sealed} of {high - low + 1} records")
        sealed_up_to = high
        if (high - first + 1) % 500_000 < SEAL_BATCH:
            log(f"sealed {high - first + 1:,} records ({(high - first + 1) / sealing:,.0f}/s)")
    records = sealed_up_to - first + 1
    return {
        "first_id": first,
        "last_sealed_id": sealed_up_to,
        "records": records,
        "seconds_sealing": round(sealing, 1),
        "records_per_second": round(records / sealing, 1),
        "seconds_with_queueing": round(time.perf_counter() - started, 1),
    }


def generate_history(
    space: Workspace, records: int, months: int = 12, budget: float = float("inf")
) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """The trail of ``records`` over ``months``, sealed; returns the partners and the sealing.

    On a reused database whose history was generated but not wholly sealed (an interrupted
    run), the sealing goes on from the first unsealed record.
    """
    with space.engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
        sealed = conn.execute(
            text("SELECT coalesce(max(record_id), 0) FROM audit_seal")
        ).scalar_one()
    if present >= records and sealed < present:
        with space.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT partner_id, client_id FROM bench_partner ORDER BY n")
            ).all()
        log(f"reusing {present:,} generated records")
        sealing = seal_history(space, sealed + 1, present, budget)
        return [(row[0], row[1]) for row in rows], sealing
    partners = register_partners(space)
    _setup_tables(space, partners)
    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    start = end - dt.timedelta(days=30.5 * months)
    first, last = generate_records(space, partners, records, start, end)
    return partners, seal_history(space, first, last, budget)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--fresh", type=int, default=500_000)
    parser.add_argument(
        "--seal-budget",
        type=float,
        default=600,
        help="seconds of history sealing; the rest of the history is queued, not sealed",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"scenario": "audit_scale", "machine": machine()}
    with workspace(args) as space:
        if space.backend != "postgresql":
            raise SystemExit("audit at scale runs on PostgreSQL (see RESULTS.md)")
        results["backend"] = space.backend
        results["data"] = prepare_reference_store(space, args.persons)
        space.make_durable()
        results["database_settings"] = space.database_settings()
        started = time.perf_counter()
        partners, history = generate_history(space, args.records, budget=args.seal_budget)
        results["history"] = {
            "records": args.records,
            "partners": len(partners),
            "seconds_to_generate_and_seal": round(time.perf_counter() - started, 1),
            "sealer_in_process": history,
        }
        now = dt.datetime.now(dt.UTC)
        first, last = generate_records(
            space, partners, args.fresh, now - dt.timedelta(minutes=1), now
        )
        with space.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_pending (record_id) SELECT id FROM audit_record "
                    "WHERE id BETWEEN :low AND :high"
                ),
                {"low": first, "high": last},
            )
        env = space.env("http://127.0.0.1:8000")
        other_work = wait_for_quiet_machine(args.quiet_wait)
        log(f"gateway audit seal: {args.fresh:,} records")
        sealed = run_measured([GATEWAY, "audit", "seal", "--json"], env, space.folder)
        if sealed.returncode != 0:
            raise RuntimeError(sealed.stderr[-3000:])
        seal_summary = json.loads(sealed.stdout.strip().splitlines()[-1])
        results["seal_command"] = {
            "records": seal_summary["sealed"],
            "checkpoints": seal_summary["checkpoints"],
            "seconds": round(sealed.seconds, 1),
            "records_per_second": round(seal_summary["sealed"] / sealed.seconds, 1),
            "peak_rss_mib": round(sealed.max_rss_mib, 1),
            "other_work_before_run_cores": other_work,
        }
        # History the budget left unsealed waits in the sealer's queue, as after an outage of
        # the sealer: verify checks the chain of what is sealed and that the rest is queued.
        # (Queued only now, so that the command above sealed fresh records alone: sealing
        # year-old records today would read, rightly, as back-dated.)
        with space.engine.begin() as conn:
            queued = conn.execute(
                text(
                    "INSERT INTO audit_pending (record_id) SELECT id FROM audit_record "
                    "WHERE id > :low AND id < :fresh"
                ),
                {"low": history["last_sealed_id"], "fresh": first},
            ).rowcount
        results["history"]["queued_unsealed"] = queued
        other_work = wait_for_quiet_machine(args.quiet_wait)
        log("gateway audit verify")
        verified = run_measured([GATEWAY, "audit", "verify", "--json"], env, space.folder)
        report = json.loads(verified.stdout.strip().splitlines()[-1])
        if verified.returncode != 0 or not report.get("ok"):
            raise RuntimeError(f"verify failed: {report} {verified.stderr[-2000:]}")
        results["verify_command"] = {
            "records": report["records"],
            "pending": report["pending"],
            "checkpoints": report["checkpoints"],
            "seconds": round(verified.seconds, 1),
            "records_per_second": round(report["records"] / verified.seconds, 1),
            "report_seconds": report["seconds"],
            "peak_rss_mib": round(verified.max_rss_mib, 1),
            "other_work_before_run_cores": other_work,
        }
        with space.engine.connect() as conn:
            results["trail"] = {
                "audit_record": conn.execute(
                    text("SELECT count(*) FROM audit_record")
                ).scalar_one(),
                "audit_subject": conn.execute(
                    text("SELECT count(*) FROM audit_subject")
                ).scalar_one(),
                "audit_checkpoint": conn.execute(
                    text("SELECT count(*) FROM audit_checkpoint")
                ).scalar_one(),
                "database_mib": round(
                    conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
                    / 2**20
                ),
            }
    emit(results, args)


if __name__ == "__main__":
    main()
