"""What every benchmark shares: a throwaway database, seeded data, a partner, servers, clients.

Each scenario runs in a :class:`Workspace`: a temporary folder (the gateway's ``var`` dir, logs,
load-generator files) and a database, either a PostgreSQL cluster started on a loopback port by
``scripts/pg-throwaway`` or an SQLite file in the folder. Everything is removed at the end
unless ``--keep`` is given; ``--database-url`` reuses a database prepared by an earlier run
(the reference store is then only seeded if it is empty), which saves the seeding minutes
while a scenario is being worked on. Published figures come from fresh workspaces.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from gateway.database import Database, is_sqlite
from gateway.identifiers import siren_with_checksum, siret_with_checksum
from gateway.migrate import upgrade
from gateway.partners import service
from gateway.reference.models import Account, StatusEvent, TurnoverDeclaration
from gateway.reference.seed import seed_reference_data
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GATEWAY = str(Path(PYTHON).parent / "gateway")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PURPOSE = "RSA_INSTRUCTION"
RECIPIENT = siret_with_checksum(siren_with_checksum("21750001") + "0001")
LEGAL_BASIS = "Code de la sécurité sociale, art. L. 114-8"
# The issue's floor for every scenario's reference store.
MIN_PERSONS = 100_000
MIN_DECLARATIONS = 2_000_000
SEED = 1
# Rate limits are a partner's contract, not a speed bump for a load test: far above any rate.
UNLIMITED_PER_MINUTE = 100_000_000


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the results."""
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What RESULTS.md states next to every figure: machine, date, commit."""
    memory_kib = 0
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + ("+changes" if dirty else ""),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- workspace and database -------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", choices=("postgresql", "sqlite"), default="postgresql", help="database"
    )
    parser.add_argument(
        "--database-url",
        help="reuse this database (seeded only if empty) instead of a throwaway one",
    )
    parser.add_argument("--keep", action="store_true", help="keep the workspace and database")
    parser.add_argument(
        "--persons",
        type=int,
        default=MIN_PERSONS,
        help="people to seed (below the issue's 100,000 only to try a script out quickly)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=600,
        help="seconds to wait, before each measured run, for other work on the machine to stop",
    )


@dataclass
class Workspace:
    backend: str
    folder: Path
    database_url: str
    master_key: str
    cluster_dir: Path | None = None
    _db: Database | None = field(default=None, repr=False)

    @property
    def var_dir(self) -> Path:
        return self.folder / "var"

    def settings(self, issuer: str = "http://127.0.0.1:8000") -> Settings:
        return Settings(
            database_url=self.database_url,
            var_dir=self.var_dir,
            issuer=issuer,
            master_key=self.master_key,
            log_format="json",
        )

    def env(self, issuer: str, **extra: str) -> dict[str, str]:
        """Environment of a gateway process (server or CLI) on this workspace."""
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("GATEWAY_")
        }
        environment.update(
            GATEWAY_DATABASE_URL=self.database_url,
            GATEWAY_VAR_DIR=str(self.var_dir),
            GATEWAY_ISSUER=issuer,
            GATEWAY_MASTER_KEY=self.master_key,
            GATEWAY_LOG_FORMAT="json",
            PYTHONPATH=str(ROOT),
        )
        environment.update(extra)
        return environment

    def make_durable(self) -> None:
        """Restart the throwaway cluster with PostgreSQL's durable defaults, and its buffers
        sized as a production server's.

        ``pg-throwaway`` turns fsync, synchronous commit and full-page writes off, which suits
        tests; a measurement of a path that commits an audit record before every answer must
        pay for real commits, as production does. Data is generated before this, measured after.

        ``shared_buffers`` is a quarter of the machine's memory, PostgreSQL's own advice for a
        dedicated server, instead of its 128 MB default. With the default, the reference data
        and the trail's indexes do not fit, PostgreSQL rereads pages from the operating
        system's cache, and on this virtual machine, which hands its cold cache back to the
        host, from its disk: a few reads of 100 ms and more in every run. The seeding's writes
        are flushed to the disk before returning, so that no run's commits queue behind them.
        """
        if self.cluster_dir is None:
            return
        pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]
        port = make_url(self.database_url).port
        options = f"-p {port} -k {self.cluster_dir} -c listen_addresses=127.0.0.1"
        command = [str(pg_ctl), "-D", str(self.cluster_dir / "data")]
        command += [
            "-l",
            str(self.cluster_dir / "log"),
            "-w",
            "-o",
            options + f" -c max_connections=300 -c shared_buffers={_quarter_of_memory_mb()}MB",
        ]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        if self._db is not None:
            self._db.sync_engine.dispose()
        subprocess.run([*command, "restart"], check=True, capture_output=True)
        log(
            "PostgreSQL restarted with fsync, synchronous_commit and full_page_writes on, "
            f"shared_buffers {_quarter_of_memory_mb()} MB"
        )
        # The seeding left a gigabyte or two of written pages in the operating system's cache,
        # which it writes out over the next minute or so: every commit of a measured run would
        # wait behind that on the disk. They go out now, before anything is measured.
        started = time.perf_counter()
        os.sync()
        log(f"seeded data written to disk in {time.perf_counter() - started:.1f} s")

    def database_settings(self) -> dict[str, str]:
        if self.backend != "postgresql":
            return {"journal_mode": "wal", "synchronous": "normal"}
        names = ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
        with self.engine.connect() as conn:
            found = {name: str(conn.execute(text(f"SHOW {name}")).scalar_one()) for name in names}
            found["version"] = str(conn.execute(text("SHOW server_version")).scalar_one())
        return found

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.database_url)
        return self._db

    @property
    def engine(self) -> Engine:
        return self.db.sync_engine


def _benchmark_master_key(folder: Path) -> str:
    # Throwaway data only: a fixed key lets a kept database be reused by a later run.
    if (folder / "master.key").exists():
        return (folder / "master.key").read_text().strip()
    digest = hashlib.sha256(b"gateway benchmarks: throwaway data").digest()
    return base64.urlsafe_b64encode(digest).decode()


@contextlib.contextmanager
def workspace(args: argparse.Namespace) -> Iterator[Workspace]:
    """A temporary folder and a migrated database, removed afterwards unless ``--keep``."""
    folder = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    cluster: Path | None = None
    try:
        if args.database_url:
            url = args.database_url
            backend = "sqlite" if is_sqlite(url) else "postgresql"
        elif args.backend == "postgresql":
            started = subprocess.run(
                [str(ROOT / "scripts" / "pg-throwaway"), "start"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            cluster, url, backend = Path(started[0]), started[1], "postgresql"
            log(f"PostgreSQL started: {url}")
        else:
            url, backend = f"sqlite:///{folder / 'gateway.db'}", "sqlite"
        space = Workspace(backend, folder, url, _benchmark_master_key(folder), cluster)
        space.var_dir.mkdir(parents=True, exist_ok=True)
        upgrade(url)
        yield space
        if space._db is not None:
            space._db.sync_engine.dispose()
    finally:
        if args.keep:
            log(f"kept: workspace {folder}, database {url}")
        else:
            if cluster is not None:
                subprocess.run(
                    [str(ROOT / "scripts" / "pg-throwaway"), "stop", str(cluster)], check=False
                )
            shutil.rmtree(folder, ignore_errors=True)


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def prepare_reference_store(
    space: Workspace,
    persons: int = MIN_PERSONS,
    min_declarations: int | None = None,
) -> dict[str, int]:
    """Seed ``persons`` people, then add older declarations until ``min_declarations``.

    ``gateway seed`` covers the 24 months before its reference date (about 8 declarations per
    person); the missing ones are the same people's earlier years: each pass copies the seeded
    window two more years back, for accounts already affiliated then, with the same amounts.
    """
    engine = space.engine
    if min_declarations is None:
        # The issue's ratio: 20 declarations a person, two million for 100,000 people.
        min_declarations = MIN_DECLARATIONS * persons // MIN_PERSONS
    if count(engine, Account) == 0:
        log(f"seeding {persons:,} persons")
        started = time.perf_counter()
        summary = seed_reference_data(engine, persons, SEED)
        log(f"seeded in {time.perf_counter() - started:.0f} s: {summary.as_dict()}")
    declarations = count(engine, TurnoverDeclaration)
    years = _years_copied_back(engine) + 2
    while declarations < min_declarations:
        added = _copy_declarations_back(engine, years, space.backend)
        declarations += added
        log(f"added {added:,} declarations {years} years back: {declarations:,} in all")
        years += 2
        if years > 40:
            raise RuntimeError("cannot reach the declaration count with earlier years")
    return {
        "persons": count(engine, Account),
        "turnover_declarations": declarations,
        "status_events": count(engine, StatusEvent),
    }


def _years_copied_back(engine: Engine) -> int:
    """How far back earlier passes (of a reused database) already went, in whole passes."""
    with engine.connect() as conn:
        earliest = conn.execute(select(func.min(TurnoverDeclaration.period_start))).scalar()
    if earliest is None:
        return 0
    months = (2024 * 12 + 9) - (earliest.year * 12 + earliest.month - 1)
    return 2 * max(0, -(-months // 24))


def _copy_declarations_back(engine: Engine, years: int, backend: str) -> int:
    # The seeded window starts in 2024-10; copies of it go back from there.
    if backend == "postgresql":
        shifted_start = f"(d.period_start - interval '{years} years')::date"
        shifted_declared = f"d.declared_at - interval '{years} years'"
        period = f"(CAST(substr(d.period, 1, 4) AS integer) - {years})::text || substr(d.period, 5)"
    else:
        shifted_start = f"date(d.period_start, '-{years} years')"
        shifted_declared = f"strftime('%Y-%m-%d %H:%M:%f000', d.declared_at, '-{years} years')"
        period = (
            f"CAST(CAST(substr(d.period, 1, 4) AS integer) - {years} AS text) "
            "|| substr(d.period, 5)"
        )
    # Only integers and fixed SQL go into this text, no outside input.
    statement = text(
        "INSERT INTO turnover_declaration (account_id, period, periodicity, period_start, "  # noqa: S608
        "sales_bic, services_bic, services_bnc, declared_at, recorded_at) "
        f"SELECT d.account_id, {period}, d.periodicity, {shifted_start}, d.sales_bic, "
        f"d.services_bic, d.services_bnc, {shifted_declared}, d.recorded_at "
        "FROM turnover_declaration d JOIN account a ON a.id = d.account_id "
        f"WHERE d.period_start >= '2024-10-01' AND {shifted_start} >= a.affiliation_date"
    )
    with engine.begin() as conn:
        added = conn.execute(statement).rowcount
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE turnover_declaration")
        )
    return int(added)


# --- partners, tokens -------------------------------------------------------------------------


@dataclass
class BenchPartner:
    name: str
    client_id: str
    key: ECKey

    def assertion(self, issuer: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": issuer + "/oauth/token",
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode({"alg": "ES256"}, claims, self.key, algorithms=["ES256"])

    def token(self, base_url: str, issuer: str, scope: str) -> str:
        response = httpx.post(
            base_url + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "scope": scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(issuer),
            },
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def register_partner(
    space: Workspace, scopes: Sequence[str], name: str = "CAF", kind: str = "caf"
) -> BenchPartner:
    """A partner with one private_key_jwt client and a habilitation per scope, no consent."""
    settings = space.settings()
    key = ECKey.generate_key("P-256", private=True)
    with space.db.sync_session.begin() as session:
        existing = {partner.name for partner in service.list_partners(session)}
        if name not in existing:
            number = len(existing) + 1
            service.add_partner(
                session,
                name=name,
                siret=siret_with_checksum(siren_with_checksum(f"{13000000 + number:08d}") + "0001"),
                kind=kind,
            )
            for scope in scopes:
                service.grant_habilitation(
                    session,
                    partner_name=name,
                    scope=scope,
                    purposes=[PURPOSE],
                    legal_basis=LEGAL_BASIS,
                    rate_limit_per_minute=UNLIMITED_PER_MINUTE,
                    today=service.legal_today(settings),
                )
        created = service.create_client(
            session, settings, partner_name=name, jwks={"keys": [key.as_dict(private=False)]}
        )
        client_id = created.client.client_id
    return BenchPartner(name, client_id, key)


def data_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Purpose": PURPOSE, "Recipient": RECIPIENT}


# --- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    """An HTTP server in its own process, pinned to one worker, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    port: int,
    log_path: Path,
    ready_path: str = "/healthz",
) -> Server:
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            list(command), env=dict(env), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(name, process, port, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + ready_path, timeout=2).status_code == 200:
                log(f"{name} ready on port {port} (pid {process.pid})")
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not become ready; see {log_path}")


def start_gateway(
    space: Workspace,
    env: Mapping[str, str] | None = None,
    name: str = "gateway",
    workers: int = 1,
) -> tuple[Server, str]:
    """``gateway serve`` on a free port (one worker by default); the server and its issuer."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    server = start_server(
        name,
        [GATEWAY, "serve", "--port", str(port), "--workers", str(workers)],
        space.env(issuer, **(env or {})),
        port,
        space.folder / f"{name}.log",
    )
    return server, issuer


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


# --- load generator ---------------------------------------------------------------------------

LUA = ROOT / "benchmarks" / "requests.lua"
RESULT_PREFIX = "RESULT "
HISTOGRAM_PREFIX = "HISTOGRAM "


def wrk(base_url: str, requests: Path, connections: int, seconds: int) -> dict[str, Any]:
    """One wrk run (one thread) for ``seconds``, cycling through the file's requests."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(LUA), base_url]
    return _load(command, {**os.environ, "WRK_REQUESTS": str(requests)}, connections)


def send_once(base_url: str, requests: Path, connections: int) -> dict[str, Any]:
    """Each request of the file sent exactly once (:mod:`benchmarks.loadgen`)."""
    command = [PYTHON, "-m", "benchmarks.loadgen", str(requests), base_url]
    command += ["--connections", str(connections)]
    return _load(command, {**os.environ, "PYTHONPATH": str(ROOT)}, connections)


def _load(command: list[str], env: dict[str, str], connections: int) -> dict[str, Any]:
    """Runs a load generator; its summary with latencies in ms and its own CPU time."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {stdout[-2000:]}")
    line = next(line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX))
    raw: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
    seconds_taken = raw["duration_us"] / 1e6
    errors = sum(value for key, value in raw.items() if key.startswith("errors_"))
    histogram = next(
        (_histogram(line) for line in stdout.splitlines() if line.startswith(HISTOGRAM_PREFIX)),
        None,
    )
    return {
        "connections": connections,
        "requests": raw["requests"],
        "seconds": round(seconds_taken, 2),
        "throughput_rps": round(raw["requests"] / seconds_taken, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p95_ms": round(raw["p95_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "errors": errors,
        "errors_detail": {k: v for k, v in raw.items() if k.startswith("errors_") and v},
        "load_generator_cpu_seconds": usage.ru_utime + usage.ru_stime,
        **({"latency_histogram": histogram} if histogram is not None else {}),
    }


def _histogram(line: str) -> dict[int, int]:
    """Latency in microseconds -> how many requests had it, from wrk's ``HISTOGRAM`` line."""
    pairs = (bucket.split(":") for bucket in line[len(HISTOGRAM_PREFIX) :].split())
    return {int(value): int(count) for value, count in pairs}


def merged_runs(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One run made of several of one server, each a dict from :func:`wrk` with its
    histogram: throughput over their summed time, percentiles of every latency recorded."""
    histogram: dict[int, int] = {}
    for part in parts:
        for value, count in part["latency_histogram"].items():
            histogram[value] = histogram.get(value, 0) + count
    requests = sum(part["requests"] for part in parts)
    seconds = sum(part["seconds"] for part in parts)
    errors_detail: dict[str, int] = {}
    for part in parts:
        for key, count in part["errors_detail"].items():
            errors_detail[key] = errors_detail.get(key, 0) + count
    return {
        "connections": parts[0]["connections"],
        "requests": requests,
        "seconds": round(seconds, 2),
        "throughput_rps": round(requests / seconds, 1),
        **{
            f"p{rank}_ms": round(histogram_percentile(histogram, rank / 100) / 1000, 2)
            for rank in (50, 95, 99)
        },
        "max_ms": round(max(histogram, default=0) / 1000, 2),
        "errors": sum(part["errors"] for part in parts),
        "errors_detail": errors_detail,
    }


def histogram_percentile(histogram: Mapping[int, int], fraction: float) -> float:
    """Nearest-rank percentile of the values a histogram counts, as :func:`percentile`."""
    total = sum(histogram.values())
    if not total:
        return float("nan")
    rank = nearest_rank(fraction, total)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to the total")


# --- measuring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A child process's wall time and peak resident memory (from the kernel, not sampled)."""

    seconds: float
    max_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(command: Sequence[str], env: Mapping[str, str], folder: Path) -> Measured:
    """Run ``command`` to its end; its peak RSS is the kernel's figure for that one child."""
    out_path, err_path = folder / "measured.out", folder / "measured.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), env=dict(env), cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        seconds=seconds,
        max_rss_mib=usage.ru_maxrss / 1024,
        returncode=process.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of one process so far (0 when it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and of its live descendants (a database server and backends)."""
    return sum(process_cpu_seconds(pid) for pid in descendants(root))


def machine_busy_seconds() -> float:
    """CPU time all cores spent outside idle and iowait since boot."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def postmaster_pid(space: Workspace) -> int | None:
    """The PostgreSQL server's process, to count its CPU (with its backends')."""
    if space.cluster_dir is not None:
        return int((space.cluster_dir / "data" / "postmaster.pid").read_text().split()[0])
    if space.backend != "postgresql":
        return None
    # A reused database: the postmaster listening on its port, if it runs on this machine.
    port = make_url(space.database_url).port or 5432
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and f"-p {port}".encode() in b" ".join(argv):
            return int(entry.name)
    return None


@dataclass
class CpuMeter:
    """Where the machine's CPU went during a run: the server, the database, everything else.

    Two cores are shared by the server, PostgreSQL, the load generator and whatever else runs
    on the machine; CPU milliseconds per request are the figure that such neighbours disturb
    least, and ``others_cores`` says how much they took.
    """

    server_pid: int
    database_pid: int | None
    _start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _started_at: float = 0.0

    def _read(self) -> tuple[float, float, float]:
        database = tree_cpu_seconds(self.database_pid) if self.database_pid else 0.0
        # The server's process tree: its workers and the audit sealer beside them.
        return machine_busy_seconds(), tree_cpu_seconds(self.server_pid), database

    def start(self) -> None:
        self._start = self._read()
        self._started_at = time.perf_counter()

    def stop(self, requests: int, load_generator_seconds: float) -> dict[str, Any]:
        busy, server, database = (b - a for a, b in zip(self._start, self._read(), strict=True))
        wall = time.perf_counter() - self._started_at
        others = busy - server - database - load_generator_seconds
        per_request = 1000 / requests if requests else float("nan")
        return {
            "server_cpu_ms_per_request": round(server * per_request, 3),
            "database_cpu_ms_per_request": round(database * per_request, 3),
            "server_cores": round(server / wall, 2),
            "database_cores": round(database / wall, 2),
            "load_generator_cores": round(load_generator_seconds / wall, 2),
            "others_cores": round(max(others, 0.0) / wall, 2),
        }


def _quarter_of_memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4 // 2**20


def wait_for_quiet_machine(max_wait: float = 600, threshold_cores: float = 0.25) -> float:
    """Wait (up to ``max_wait`` s) until the machine is nearly idle; returns its busy cores.

    Other work on the machine (a test suite, another server) takes CPU from the server under
    test; a run starts when the rest of the machine uses less than ``threshold_cores``.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy_seconds()
        time.sleep(2)
        cores = (machine_busy_seconds() - before) / 2
        if cores < threshold_cores or time.monotonic() > deadline:
            if cores >= threshold_cores:
                log(f"machine still busy ({cores:.2f} cores): measuring anyway")
            return round(cores, 2)
        log(f"machine busy ({cores:.2f} cores in use by other work): waiting")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` between 0 and 1)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[nearest_rank(fraction, len(ordered)) - 1]


def nearest_rank(fraction: float, total: int) -> int:
    """The 1-based rank of the ``fraction`` percentile among ``total`` sorted values:
    the smallest rank with at least that fraction of the values at or below it."""
    # Rounded first: 0.57 * 100 is 56.99999999999999 in binary floating point.
    return max(1, min(total, math.ceil(round(fraction * total, 9))))


def emit(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the results as JSON on stdout (and to ``--json-out``)."""
    document = json.dumps(results, indent=2, default=str)
    print(document)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(document + "\n")
