"""``gateway demo``, run as a person runs it: a fresh var dir, Ctrl-C, then ``audit verify``.

The demo is defined on the embedded default (an SQLite file under the var dir): that is what
the README's first command runs on a fresh machine, so this test does not run on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.demo.cast import cast
from gateway.demo.run import DEMO_PERSONS, DEMO_SEED, READY_MARK

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GATEWAY_TEST_DATABASE_URL")),
    reason="the demo is defined on the embedded SQLite default",
)

GATEWAY = str(Path(sys.executable).with_name("gateway"))
READY_WITHIN_SECONDS = 60


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GATEWAY_") and key != "COLUMNS"
    }
    env["GATEWAY_VAR_DIR"] = str(tmp_path / "var")
    env["GATEWAY_DATABASE_URL"] = f"sqlite:///{tmp_path / 'var' / 'gateway.db'}"
    env["COLUMNS"] = "100"
    return env


def _lines(stream: object, into: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)
    into.put(None)


@contextmanager
def run_demo_until_ready(env: dict[str, str], cwd: Path) -> Iterator[tuple[str, float]]:
    """Start the demo, yield (its output until ready, seconds it took), then Ctrl-C it."""
    started = time.monotonic()
    process = subprocess.Popen(
        [GATEWAY, "demo", "--port", "0"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    try:
        while True:
            line = lines.get(timeout=READY_WITHIN_SECONDS + 30)
            if line is None:
                pytest.fail("the demo ended before it was ready:\n" + "".join(output))
            output.append(line)
            if READY_MARK in line:
                break
        ready_after = time.monotonic() - started
        yield "".join(output), ready_after
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, "".join(output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    rest = []
    while (line := lines.get(timeout=10)) is not None:
        rest.append(line)
    assert "Stopped." in "".join(rest), "".join(rest)


def _audit_verify(env: dict[str, str], cwd: Path) -> dict[str, object]:
    result = subprocess.run(
        [GATEWAY, "audit", "verify", "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_the_demo_shows_four_partners_succeeding_then_stops_with_a_sound_trail(
    environment: dict[str, str], tmp_path: Path
) -> None:
    people = cast(DEMO_SEED, DEMO_PERSONS)
    for run in ("fresh", "again"):
        with run_demo_until_ready(environment, tmp_path) as (output, ready_after):
            assert ready_after < READY_WITHIN_SECONDS
            assert "4 of 4 scenarios went as expected" in output, output
            for partner in ("CAF", "Pôle emploi", "CNAM", "FAFCEA"):
                assert partner in output
            assert "consent.missing" in output, "the refusal for lack of consent is not shown"
            assert "/console/" in output
            for nir in (*people.monthly_nirs, people.consenting_nir):
                assert nir not in output, "a NIR is shown in clear"
            if run == "fresh":
                assert "seeded 2,000 synthetic people" in output
            else:
                assert "already holds 2,000 people" in output
        report = _audit_verify(environment, tmp_path)
        assert report["ok"] is True
        assert report["pending"] == 0, "records left unsealed by the stop"
        assert isinstance(report["records"], int)
        assert report["records"] > 20

    keys = sorted((tmp_path / "var" / "demo").glob("*.jwk"))
    assert [key.name for key in keys] == [
        "caf.jwk",
        "cnam.jwk",
        "pole-emploi.jwk",
        "training-fund.jwk",
    ]
    assert all(key.stat().st_mode & 0o077 == 0 for key in keys), "a private key is readable"


def test_the_demo_refuses_a_busy_port(environment: dict[str, str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [GATEWAY, "demo", "--port", str(port)],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert "Cannot start the demo" in result.stdout
