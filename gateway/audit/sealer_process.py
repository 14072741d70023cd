"""The sealer as a process of its own beside the server's workers, kept running by the server.

Hashing records and signing checkpoints is CPU work: in a thread of a worker it would take the
GIL from the requests, so ``gateway serve`` runs ``gateway audit seal --follow`` beside its
workers instead. The sealer is started in a session of its own, so that a Ctrl-C at the
terminal reaches the server alone: the server stops first (its writer commits what is queued),
and only then is the sealer asked to stop, after one last run that seals those records too.
It is restarted if it exits while the server runs, and stops by itself if the server dies.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import structlog

log = structlog.get_logger(__name__)

_RESTART_DELAY_SECONDS = 1.0
_STOP_TIMEOUT_SECONDS = 60.0

SEALER_COMMAND = (sys.executable, "-m", "gateway", "audit", "seal", "--follow", "--with-parent")


class SealerProcess:
    """Runs ``command`` and starts it again whenever it exits, until :meth:`stop`."""

    def __init__(self, command: Sequence[str] = SEALER_COMMAND) -> None:
        self._command = list(command)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._supervise, name="sealer-process", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _supervise(self) -> None:
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                # Our own fixed command line, never anything from a request.
                self._process = subprocess.Popen(self._command, start_new_session=True)  # noqa: S603
            code = self._process.wait()
            if self._stopping.is_set():
                return
            log.error("audit_sealer_exited", returncode=code)
            self._stopping.wait(_RESTART_DELAY_SECONDS)

    def stop(self) -> int | None:
        """Ask the sealer to stop after a last run; returns its exit code."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None:
            return None
        process.terminate()
        try:
            return process.wait(timeout=_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("audit_sealer_kill", timeout_seconds=_STOP_TIMEOUT_SECONDS)
            process.kill()
            return process.wait()


@contextmanager
def sealer_process(command: Sequence[str] = SEALER_COMMAND) -> Iterator[SealerProcess]:
    sealer = SealerProcess(command)
    sealer.start()
    try:
        yield sealer
    finally:
        sealer.stop()
