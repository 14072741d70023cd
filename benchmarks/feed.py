"""Feed: drain 1,000,000 status events through the gateway's change feed; events per second.

    python -m benchmarks.feed [--backend postgresql|sqlite]

The seeded store has about 1.2 status events per person; the events missing to reach one
million are added first as regime changes of the same people (nine each, in nine
transactions, so the feed's order crosses transaction ids as it does in production). A
consumer then follows the cursors from the start, 1,000 events a page (the maximum), one page
after the other as a real consumer must, until a page comes back empty. Every page goes through
the whole pipeline and leaves one audit record naming every person it carried.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import text

from benchmarks.common import (
    CpuMeter,
    Workspace,
    add_common_arguments,
    count,
    data_headers,
    emit,
    log,
    machine,
    percentile,
    postmaster_pid,
    prepare_reference_store,
    process_cpu_seconds,
    register_partner,
    start_gateway,
    wait_for_quiet_machine,
    workspace,
)
from gateway.reference.models import StatusEvent

EVENTS = 1_000_000
PAGE = 1000


def add_events(space: Workspace, wanted: int) -> int:
    """Regime changes of existing people until the feed holds ``wanted`` events."""
    present = count(space.engine, StatusEvent)
    step = 1
    while present < wanted:
        if space.backend == "postgresql":
            effective = f"a.affiliation_date + {step * 29}"
        else:
            effective = f"date(a.affiliation_date, '+{step * 29} days')"
        # A seeded event may fall on the same day: skipped, the next step makes up for it.
        statement = text(
            "INSERT INTO status_event (account_id, event, effective_date, detail, recorded_at) "  # noqa: S608
            f"SELECT * FROM (SELECT a.id, 'regime_change', {effective}, "
            f"CASE WHEN {step} % 2 = 1 THEN 'classique' ELSE 'micro' END, CURRENT_TIMESTAMP "
            "FROM account a ORDER BY a.id LIMIT :limit) AS added WHERE true "
            "ON CONFLICT DO NOTHING"
        )
        with space.engine.begin() as conn:
            present += conn.execute(statement, {"limit": wanted - present}).rowcount
        step += 1
    with space.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE status_event"))
    return present


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"scenario": "feed", "machine": machine()}
    with workspace(args) as space:
        results["backend"] = space.backend
        results["data"] = prepare_reference_store(space, args.persons)
        results["data"]["status_events"] = add_events(space, EVENTS)
        log(f"{results['data']['status_events']:,} status events")
        space.make_durable()
        results["database_settings"] = space.database_settings()
        partner = register_partner(space, ["status:feed"])
        gateway, issuer = start_gateway(space, {"GATEWAY_ACCESS_TOKEN_LIFETIME_SECONDS": "3600"})
        try:
            headers = data_headers(partner.token(gateway.base_url, issuer, "status:feed"))
            other_work = wait_for_quiet_machine(args.quiet_wait)
            meter = CpuMeter(gateway.pid, postmaster_pid(space))
            latencies: list[float] = []
            events = 0
            cursor: str | None = None
            with httpx.Client(base_url=gateway.base_url, timeout=60, headers=headers) as client:
                meter.start()
                client_cpu = process_cpu_seconds(os.getpid())
                started = time.perf_counter()
                while True:
                    params: dict[str, Any] = {"limit": PAGE}
                    if cursor is not None:
                        params["after"] = cursor
                    asked = time.perf_counter()
                    response = client.get("/api/v1/status/events", params=params)
                    response.raise_for_status()
                    page = response.json()
                    latencies.append((time.perf_counter() - asked) * 1000)
                    if not page["events"]:
                        break
                    events += len(page["events"])
                    cursor = page["next_cursor"]
                    if len(latencies) % 100 == 0:
                        log(f"{events:,} events")
                seconds = time.perf_counter() - started
            cpu = meter.stop(len(latencies), process_cpu_seconds(os.getpid()) - client_cpu)
            results["drain"] = {
                "events": events,
                "pages": len(latencies),
                "page_size": PAGE,
                "seconds": round(seconds, 2),
                "events_per_second": round(events / seconds, 1),
                "page_p50_ms": round(percentile(latencies, 0.5), 1),
                "page_p99_ms": round(percentile(latencies, 0.99), 1),
                "cpu_per_page": cpu,
                "other_work_before_run_cores": other_work,
            }
            log(f"drained {events:,} events in {seconds:.1f} s")
        finally:
            gateway.stop()
    emit(results, args)


if __name__ == "__main__":
    main()
