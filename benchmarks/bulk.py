"""Bulk: one CFP batch of 10,000 questions end to end, and the same 10,000 as single calls.

    python -m benchmarks.bulk [--backend postgresql|sqlite]

The 10,000 (SIREN, year) questions are drawn at random among the CFP contributions the store
holds, so every one is answered with a signed attestation. The batch goes through the gateway
as one ``POST /api/v1/cfp/attestations/batch`` (timed from the first byte sent to the last byte
of the answer received and parsed; three times, the median is reported). The single calls are
the same questions as ``GET /api/v1/cfp/attestations/{siren}/{year}``, each sent once by wrk,
sequentially (one connection) and with 64 connections.

Each batch leaves one audit record naming every person whose attestation it carried; each
single call leaves its own record: the figures include that cost.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import func, select, text

from benchmarks.common import (
    PURPOSE,
    RECIPIENT,
    SEED,
    CpuMeter,
    add_common_arguments,
    data_headers,
    emit,
    log,
    machine,
    postmaster_pid,
    prepare_reference_store,
    register_partner,
    send_once,
    start_gateway,
    tree_cpu_seconds,
    wait_for_quiet_machine,
    workspace,
)
from gateway.audit.models import AuditRecord, AuditSubjectEntry

ITEMS = 10_000
BATCHES = 3


def draw_questions(engine: Any) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        pairs = conn.execute(
            text(
                "SELECT a.siren, c.year FROM cfp_payment c JOIN account a ON a.id = c.account_id "
                "ORDER BY a.siren, c.year"
            )
        ).all()
    return [(siren, year) for siren, year in random.Random(SEED).sample(pairs, ITEMS)]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"scenario": "bulk", "machine": machine()}
    with workspace(args) as space:
        results["backend"] = space.backend
        results["data"] = prepare_reference_store(space, args.persons)
        questions = draw_questions(space.engine)
        space.make_durable()
        results["database_settings"] = space.database_settings()
        partner = register_partner(space, ["cfp:read"])
        gateway, issuer = start_gateway(space, {"GATEWAY_ACCESS_TOKEN_LIFETIME_SECONDS": "3600"})
        try:
            token = partner.token(gateway.base_url, issuer, "cfp:read")
            headers = {**data_headers(token), "Content-Type": "application/json"}
            body = {"items": [{"siren": siren, "year": year} for siren, year in questions]}
            batches = []
            with httpx.Client(base_url=gateway.base_url, timeout=300) as client:
                # One small batch first, so that imports and caches are warm in the server.
                warm = client.post(
                    "/api/v1/cfp/attestations/batch",
                    json={"items": body["items"][:10]},
                    headers=headers,
                )
                warm.raise_for_status()
                for number in range(BATCHES):
                    other_work = wait_for_quiet_machine(args.quiet_wait)
                    meter = CpuMeter(gateway.pid, postmaster_pid(space))
                    rss_before = rss_mib(gateway.pid)
                    meter.start()
                    started = time.perf_counter()
                    response = client.post(
                        "/api/v1/cfp/attestations/batch", json=body, headers=headers
                    )
                    answer = response.json()
                    seconds = time.perf_counter() - started
                    cpu = meter.stop(ITEMS, 0.0)
                    response.raise_for_status()
                    batches.append(
                        {
                            "seconds": round(seconds, 3),
                            "items_per_second": round(ITEMS / seconds, 1),
                            "found": answer["found"],
                            "response_mib": round(len(response.content) / 2**20, 2),
                            "server_rss_mib_before": round(rss_before, 1),
                            "server_rss_mib_after": round(rss_mib(gateway.pid), 1),
                            "server_cpu_seconds": round(
                                cpu["server_cpu_ms_per_request"] * ITEMS / 1000, 3
                            ),
                            "database_cpu_seconds": round(
                                cpu["database_cpu_ms_per_request"] * ITEMS / 1000, 3
                            ),
                            "others_cores": cpu["others_cores"],
                            "other_work_before_run_cores": other_work,
                        }
                    )
                    log(f"batch {number + 1}: {seconds:.2f} s, {answer['found']} found")
            median = statistics.median(batch["seconds"] for batch in batches)
            results["batch"] = {
                "items": ITEMS,
                "median_seconds": median,
                "median_items_per_second": round(ITEMS / median, 1),
                "runs": batches,
            }
            with space.engine.connect() as conn:
                last = conn.execute(
                    select(AuditRecord.id)
                    .where(AuditRecord.operation == "batch_attestations")
                    .order_by(AuditRecord.id.desc())
                    .limit(1)
                ).scalar_one()
                subjects = conn.execute(
                    select(func.count())
                    .select_from(AuditSubjectEntry)
                    .where(AuditSubjectEntry.record_id == last)
                ).scalar_one()
            results["batch"]["audit_subjects_of_one_batch"] = subjects

            requests = space.folder / "cfp-singles.tsv"
            lines = [f"H\tPurpose\t{PURPOSE}", f"H\tRecipient\t{RECIPIENT}", f"T\tcfp\t{token}"]
            lines += [
                f"R\tGET\t/api/v1/cfp/attestations/{siren}/{year}\tcfp" for siren, year in questions
            ]
            requests.write_text("\n".join(lines) + "\n")
            singles = []
            for connections in (1, 64):
                other_work = wait_for_quiet_machine(args.quiet_wait)
                log(f"10,000 single calls over {connections} connection(s)")
                cpu_before = tree_cpu_seconds(gateway.pid)
                run = send_once(gateway.base_url, requests, connections)
                run.pop("load_generator_cpu_seconds")
                run["server_cpu_seconds"] = round(tree_cpu_seconds(gateway.pid) - cpu_before, 2)
                run["other_work_before_run_cores"] = other_work
                singles.append(run)
            results["singles"] = singles
        finally:
            gateway.stop()
    emit(results, args)


if __name__ == "__main__":
    main()
