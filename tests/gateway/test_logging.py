"""Invariant 3: a NIR never appears in clear in the logs, whoever logs it and however."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import structlog

from gateway.logging import configure_logging
from tests.conftest import SUITE_LOG, nir_leaks

NIR = "269054958815780"
SPACED_NIR = "2 69 05 49 588 157 80"


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_invariant_3_no_nir_in_clear_in_logs(tmp_path: Path) -> None:
    log_file = tmp_path / "gateway.log"
    configure_logging("json", "info", log_file)
    try:
        structlog.get_logger("test").info(
            "lookup", nir=NIR, detail={"nested": [f"person {SPACED_NIR}"]}
        )
        logging.getLogger("uvicorn.error").warning("bad request body %s", NIR)
        try:
            raise ValueError(f"cannot parse {NIR}")
        except ValueError:
            structlog.get_logger("test").exception("failed")
    finally:
        configure_logging("json", "info", SUITE_LOG)
    text = log_file.read_text()
    assert NIR not in text
    assert SPACED_NIR not in text
    assert "[NIR]" in text
    events = [record["event"] for record in _records(log_file)]
    assert events[0] == "lookup"
    assert len(events) == 3


def test_the_suite_scan_finds_a_nir_written_in_clear(tmp_path: Path) -> None:
    log_file = tmp_path / "leaky.log"
    log_file.write_text('{"event": "ok"}\n{"event": "leak", "nir": "' + NIR + '"}\n')
    assert nir_leaks(log_file) == [2]
