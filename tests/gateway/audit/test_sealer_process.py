"""The sealer as a process of its own: ``gateway audit seal --follow`` and its supervisor."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from audit_factories import make_entry
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.audit import AuditRuntime, verify_trail
from gateway.audit.models import AuditPending, AuditSeal
from gateway.audit.sealer_process import SealerProcess
from gateway.audit.signing import gateway_checkpoint_signer
from gateway.database import Database
from gateway.settings import Settings

WAIT_SECONDS = 30.0


def count(db: Database, table: type) -> int:
    with db.sync_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATABASE_URL=settings.database_url,
        GATEWAY_VAR_DIR=str(settings.var_dir),
        GATEWAY_LOG_FORMAT="json",
        **extra,
    )
    return env


@contextmanager
def follow(settings: Settings, interval: float) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "audit", "seal", "--follow"],
        env=environment(settings, GATEWAY_AUDIT_SEAL_INTERVAL_SECONDS=str(interval)),
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def write_records(settings: Settings, first: int, how_many: int) -> None:
    """Records written by an app that leaves sealing to another process, as under serve."""
    app = create_app(settings.model_copy(update={"audit_seal_in_process": False}))
    async with app.router.lifespan_context(app):
        audit: AuditRuntime = app.state.audit
        await asyncio.gather(
            *(audit.writer.write(make_entry(i)) for i in range(first, first + how_many))
        )


async def test_an_app_told_not_to_seal_leaves_its_records_queued(
    settings: Settings, db: Database
) -> None:
    await write_records(settings, 0, 5)

    assert count(db, AuditPending) == 5
    assert count(db, AuditSeal) == 0


async def test_follow_seals_what_the_app_writes_and_once_more_when_told_to_stop(
    settings: Settings, db: Database
) -> None:
    await write_records(settings, 0, 3)
    # Its first run seals those three; the next one is ten minutes away, so only the last run,
    # on SIGTERM, can seal what is written afterwards.
    with follow(settings, interval=600) as sealer:
        assert wait_until(lambda: count(db, AuditSeal) == 3)
        await write_records(settings, 3, 4)
        assert count(db, AuditPending) == 4
        sealer.send_signal(signal.SIGTERM)
        assert sealer.wait(timeout=WAIT_SECONDS) == 0

    assert count(db, AuditPending) == 0
    assert count(db, AuditSeal) == 7
    report = verify_trail(db.sync_engine, gateway_checkpoint_signer(settings, db.sync_engine))
    assert report.ok, report.problem


def test_the_supervisor_starts_the_sealer_again_when_it_exits(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    command = [sys.executable, "-c", f"open({str(starts)!r}, 'a').write('x')"]
    supervisor = SealerProcess(command)
    supervisor.start()
    try:
        assert wait_until(lambda: starts.exists() and len(starts.read_text()) >= 2)
    finally:
        supervisor.stop()


def test_stopping_the_supervisor_stops_the_sealer(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    command = [
        sys.executable,
        "-c",
        f"import time; open({str(ready)!r}, 'w').close(); time.sleep(600)",
    ]
    supervisor = SealerProcess(command)
    supervisor.start()
    assert wait_until(ready.exists)

    returncode = supervisor.stop()

    assert returncode == -signal.SIGTERM
    ready.unlink()
    time.sleep(1.5)  # longer than the restart delay: a restart would have made the file again
    assert not ready.exists()
