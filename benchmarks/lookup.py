"""Lookup path: the gateway against a bare FastAPI app doing the same reads, and sealing lag.

    python -m benchmarks.lookup [--backend postgresql|sqlite] [--duration 30]

Both servers run in their own process with one uvicorn worker, on the same database; ``wrk``
(one thread, in a third process) sends the same request list to each, at 16, 64 and 256
connections in turn: a mix in equal parts of turnover v2 by SIREN (twelve months), status v1
by SIREN and one CFP attestation, over thousands of people drawn at random. The gateway's
requests carry a real access token, purpose and recipient, so every one goes through the
whole pipeline: token check, scope, habilitation, purpose, consent check, read, audit record
committed before the answer. The baseline ignores those headers.

Each level is measured in four slices of half ``--duration`` each, in the order gateway,
baseline, baseline, gateway, and each server's figures are those of its two slices together
(throughput over their summed time, percentiles of every latency they recorded): the machine
(a virtual one) drifts in speed by up to a third within minutes, and that order gives both
servers the same average moment of a drift, where one run after the other would not.

Sealing lag is read from the trail itself after each level: for every record of its gateway
slices, the time from the record's ``occurred_at`` to the ``created_at`` of the first signed
checkpoint covering it. The sealer's queue (``audit_pending``) is sampled every second during
those slices.

``--profile DIR`` adds one more 64-connection gateway run under ``py-spy record`` and writes a
flame graph and the collapsed stacks there.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import random
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from benchmarks.common import (
    PURPOSE,
    PYTHON,
    RECIPIENT,
    SEED,
    BenchPartner,
    CpuMeter,
    Server,
    Workspace,
    add_common_arguments,
    emit,
    free_port,
    log,
    machine,
    merged_runs,
    percentile,
    postmaster_pid,
    prepare_reference_store,
    register_partner,
    start_gateway,
    start_server,
    wait_for_quiet_machine,
    workspace,
    wrk,
)
from gateway.audit.models import AuditPending, AuditRecord

SCOPES = ("turnover:read", "status:read", "cfp:read")
RANGE = ("2025-10", "2026-09")  # the last twelve months of the seeded data
CFP_YEAR = 2025
PER_KIND = 3000
# The servers' slices at each level: each is measured at the same average moment.
SLICE_ORDER = ("gateway", "baseline", "baseline", "gateway")


def sample(space: Workspace) -> dict[str, list[str]]:
    """People the three lookups find (answers are 200, not 404), drawn with a fixed seed."""
    queries = {
        "turnover": "SELECT DISTINCT a.siren FROM account a JOIN turnover_declaration d "
        "ON d.account_id = a.id WHERE d.period_start >= :first_day ORDER BY a.siren",
        "status": "SELECT siren FROM account ORDER BY siren",
        "cfp": "SELECT a.siren FROM account a JOIN cfp_payment c ON c.account_id = a.id "
        "WHERE c.year = :year ORDER BY a.siren",
    }
    parameters = {"first_day": dt.date.fromisoformat(f"{RANGE[0]}-01"), "year": CFP_YEAR}
    rng = random.Random(SEED)
    drawn = {}
    with space.engine.connect() as conn:
        for kind, query in queries.items():
            sirens = list(conn.execute(text(query), parameters).scalars())
            drawn[kind] = rng.sample(sirens, min(PER_KIND, len(sirens)))
    return drawn


def write_requests(folder: Path, drawn: dict[str, list[str]], tokens: dict[str, str]) -> Path:
    paths = {
        "turnover": lambda siren: f"/api/v2/turnover/{siren}?from={RANGE[0]}&to={RANGE[1]}",
        "status": lambda siren: f"/api/v1/status/{siren}",
        "cfp": lambda siren: f"/api/v1/cfp/attestations/{siren}/{CFP_YEAR}",
    }
    requests = [(kind, paths[kind](siren)) for kind, sirens in drawn.items() for siren in sirens]
    random.Random(SEED).shuffle(requests)
    lines = [f"H\tPurpose\t{PURPOSE}", f"H\tRecipient\t{RECIPIENT}"]
    lines += [f"T\t{kind}\t{token}" for kind, token in tokens.items()]
    lines += [f"R\tGET\t{path}\t{kind}" for kind, path in requests]
    path = folder / "lookup-requests.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def database_counters(space: Workspace) -> tuple[int, int]:
    """Transactions ended (committed or rolled back) and connections opened, so far."""
    if space.backend != "postgresql":
        return 0, 0
    with space.engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        ended, sessions = conn.execute(
            text(
                "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
    return int(ended), int(sessions)


def measured_run(
    space: Workspace,
    server: Server,
    requests: Path,
    connections: int,
    seconds: int,
    quiet_wait: float,
) -> dict[str, Any]:
    """A wrk run with the CPU it cost on each side and the database transactions it made."""
    quiet = wait_for_quiet_machine(quiet_wait)
    meter = CpuMeter(server.pid, postmaster_pid(space))
    before = database_counters(space)
    meter.start()
    run = wrk(server.base_url, requests, connections, seconds)
    cpu = meter.stop(run["requests"], run.pop("load_generator_cpu_seconds"))
    # The meter's own queries are a handful against thousands of requests.
    ended, opened = (b - a for a, b in zip(before, database_counters(space), strict=True))
    if space.backend == "postgresql":
        run["db_transactions_per_request"] = round(ended / run["requests"], 3)
        run["db_connections_opened"] = opened
    run["cpu"] = cpu
    run["other_work_before_run_cores"] = quiet
    return run


def merged_measurements(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One server's slices of a level as one run (see :func:`benchmarks.common.merged_runs`),
    with its CPU figures and database counters weighted by each slice's requests or time."""
    run = merged_runs(parts)
    requests: int = run["requests"]
    seconds: float = run["seconds"]

    def by_requests(key: str, group: str | None = None) -> float:
        total: float = sum((p[group] if group else p)[key] * p["requests"] for p in parts)
        return round(total / requests, 3)

    def by_time(key: str) -> float:
        total: float = sum(p["cpu"][key] * p["seconds"] for p in parts)
        return round(total / seconds, 2)

    run["cpu"] = {
        key: by_requests(key, "cpu") if key.endswith("_per_request") else by_time(key)
        for key in parts[0]["cpu"]
    }
    if "db_transactions_per_request" in parts[0]:
        run["db_transactions_per_request"] = by_requests("db_transactions_per_request")
        run["db_connections_opened"] = sum(p["db_connections_opened"] for p in parts)
    run["other_work_before_run_cores"] = max(p["other_work_before_run_cores"] for p in parts)
    run["slices_rps"] = [p["throughput_rps"] for p in parts]
    return run


class QueueSampler:
    """Samples the sealer's queue length once a second in a thread, while a run lasts."""

    def __init__(self, space: Workspace) -> None:
        self._space = space
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._space.engine.connect() as conn:
            while not self._stop.wait(1.0):
                pending = conn.execute(select(func.count()).select_from(AuditPending)).scalar()
                conn.commit()
                self.samples.append(int(pending or 0))

    def __enter__(self) -> QueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def last_record_id(space: Workspace) -> int:
    with space.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(AuditRecord.id), 0))).scalar_one())


def sealing_lag(space: Workspace, after_id: int, queue_samples: list[int]) -> dict[str, Any]:
    """Lag from each record of the run to the signed checkpoint covering it."""
    started = time.perf_counter()
    while True:
        with space.engine.connect() as conn:
            pending = conn.execute(select(func.count()).select_from(AuditPending)).scalar_one()
        if not pending or time.perf_counter() - started > 120:
            break
        time.sleep(0.1)
    drained = time.perf_counter() - started
    query = text(
        "SELECT r.occurred_at, (SELECT c.created_at FROM audit_checkpoint c "
        "WHERE c.position >= s.position ORDER BY c.position LIMIT 1) "
        "FROM audit_record r JOIN audit_seal s ON s.record_id = r.id WHERE r.id > :after"
    )
    with space.db.sync_session() as session:
        rows = session.execute(query, {"after": after_id}).all()
    lags = [
        (_aware(checkpointed) - _aware(occurred)).total_seconds() * 1000
        for occurred, checkpointed in rows
        if checkpointed is not None
    ]
    return {
        "records": len(lags),
        "p50_ms": round(percentile(lags, 0.50), 1),
        "p95_ms": round(percentile(lags, 0.95), 1),
        "p99_ms": round(percentile(lags, 0.99), 1),
        "max_ms": round(max(lags), 1) if lags else None,
        "queue_max_during_run": max(queue_samples, default=0),
        "queue_mean_during_run": round(sum(queue_samples) / len(queue_samples), 1)
        if queue_samples
        else 0,
        "seconds_to_empty_queue_after_run": round(drained, 2),
    }


def _aware(value: Any) -> dt.datetime:
    # SQLite hands back text without an offset; both hold UTC.
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, dt.datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def start_baseline(space: Workspace, workers: int = 1) -> Server:
    port = free_port()
    return start_server(
        "baseline",
        [
            PYTHON,
            "-m",
            "uvicorn",
            "benchmarks.baseline_app:create_app",
            "--factory",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        space.env(f"http://127.0.0.1:{port}"),
        port,
        space.folder / "baseline.log",
    )


def fetch_tokens(partner: BenchPartner, gateway: Server, issuer: str) -> dict[str, str]:
    kinds = dict(zip(("turnover", "status", "cfp"), SCOPES, strict=True))
    return {kind: partner.token(gateway.base_url, issuer, scope) for kind, scope in kinds.items()}


def profile(
    gateway: Server, requests: Path, folder: Path, seconds: int, connections: int = 64
) -> dict[str, Any]:
    """One gateway run under py-spy (non-blocking sampling, so the server is not paused)."""
    folder.mkdir(parents=True, exist_ok=True)
    spy = str(Path(PYTHON).parent / "py-spy")
    outputs = {"flamegraph": folder / "gateway-64.svg", "raw": folder / "gateway-64.txt"}
    recorders = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--nonblocking",
                "--rate",
                "100",
                "--format",
                fmt,
                "-o",
                str(outputs[name]),
                "--pid",
                str(gateway.pid),
                "--duration",
                str(seconds),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, fmt in (("flamegraph", "flamegraph"), ("raw", "raw"))
    ]
    measured = wrk(gateway.base_url, requests, connections, seconds)
    measured.pop("load_generator_cpu_seconds")
    for recorder in recorders:
        recorder.wait()
    return {"run": measured, **{name: str(path) for name, path in outputs.items()}}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--duration", type=int, default=30, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up per server")
    parser.add_argument("--connections", default="16,64,256", help="comma-separated levels")
    parser.add_argument("--profile", type=Path, help="also profile the gateway into this folder")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of each server (same for both)"
    )
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.connections.split(",")]

    results: dict[str, Any] = {"scenario": "lookup", "machine": machine()}
    with workspace(args) as space:
        results["backend"] = space.backend
        results["workers_per_server"] = args.workers
        results["data"] = prepare_reference_store(space, args.persons)
        space.make_durable()
        results["database_settings"] = space.database_settings()
        drawn = sample(space)
        results["people_drawn"] = {kind: len(sirens) for kind, sirens in drawn.items()}
        partner = register_partner(space, SCOPES)
        gateway, issuer = start_gateway(
            space, {"GATEWAY_ACCESS_TOKEN_LIFETIME_SECONDS": "3600"}, workers=args.workers
        )
        baseline = start_baseline(space, workers=args.workers)
        try:
            requests = write_requests(space.folder, drawn, fetch_tokens(partner, gateway, issuer))
            servers = {"gateway": gateway, "baseline": baseline}
            slice_seconds = math.ceil(args.duration / 2)
            runs = []
            for connections in levels:
                for server in (gateway, baseline):
                    log(f"warm-up {server.name} at {connections} connections")
                    wrk(server.base_url, requests, connections, args.warmup)
                after = last_record_id(space)
                parts: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
                queue_samples: list[int] = []
                for name in SLICE_ORDER:
                    log(f"{name} at {connections} connections, {slice_seconds} s")
                    # The queue is sampled during the gateway's slices only: the sampler's
                    # queries must not weigh on the baseline's.
                    sampler = QueueSampler(space) if name == "gateway" else None
                    with sampler or contextlib.nullcontext():
                        parts[name].append(
                            measured_run(
                                space,
                                servers[name],
                                requests,
                                connections,
                                slice_seconds,
                                args.quiet_wait,
                            )
                        )
                    if sampler is not None:
                        queue_samples += sampler.samples
                lag = sealing_lag(space, after, queue_samples)
                gateway_run = merged_measurements(parts["gateway"])
                baseline_run = merged_measurements(parts["baseline"])
                ratio = gateway_run["throughput_rps"] / baseline_run["throughput_rps"]
                runs.append(
                    {
                        "connections": connections,
                        "gateway": gateway_run,
                        "baseline": baseline_run,
                        "ratio": round(ratio, 3),
                        "sealing_lag": lag,
                    }
                )
                log(
                    f"c={connections}: gateway {gateway_run['throughput_rps']} rps "
                    f"p99 {gateway_run['p99_ms']} ms; baseline {baseline_run['throughput_rps']}"
                    f" rps p99 {baseline_run['p99_ms']} ms; ratio {ratio:.2f}"
                )
            results["runs"] = runs
            if args.profile:
                log("profiling the gateway at 64 connections")
                results["profile"] = profile(gateway, requests, args.profile, args.duration)
        finally:
            gateway.stop()
            baseline.stop()
    emit(results, args)


if __name__ == "__main__":
    main()
