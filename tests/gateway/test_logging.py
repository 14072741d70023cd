"""Invariant 3: a NIR never appears in clear in the logs, whoever logs it and however."""

from __future__ import annotations

import io
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


def _our_handler_streams(stderr: io.StringIO) -> None:
    """Point the stderr handler `configure_logging` made at ``stderr`` (the file is real)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setStream(stderr)


def test_a_line_of_ours_reaches_every_handler_once_and_a_nir_in_a_key_is_masked(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "gateway.log"
    stderr = io.StringIO()
    configure_logging("json", "info", log_file)
    try:
        _our_handler_streams(stderr)
        structlog.get_logger("test").info("seen", **{f"id {NIR}": 1}, count=2)
        structlog.get_logger("test").debug("below the level")
    finally:
        configure_logging("json", "info", SUITE_LOG)
    [on_file] = _records(log_file)
    [on_stderr] = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert on_file == on_stderr
    assert on_file["event"] == "seen"
    assert on_file["count"] == 2
    assert NIR not in log_file.read_text()
    assert "id [NIR]" in on_file


def test_a_failing_handler_does_not_fail_the_caller(tmp_path: Path) -> None:
    log_file = tmp_path / "gateway.log"
    configure_logging("json", "info", log_file)
    try:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.close()
        raised = logging.raiseExceptions
        logging.raiseExceptions = False  # the standard library's own switch for reporting
        try:
            structlog.get_logger("test").info("after the file closed")
        finally:
            logging.raiseExceptions = raised
    finally:
        configure_logging("json", "info", SUITE_LOG)
    assert log_file.read_text() == ""


def test_values_the_fast_renderer_refuses_still_make_a_masked_json_line(tmp_path: Path) -> None:
    log_file = tmp_path / "gateway.log"
    configure_logging("json", "info", log_file)
    try:
        structlog.get_logger("test").info(
            "odd values",
            huge=2**70,  # beyond 64 bits: orjson refuses it
            by_number={7: NIR},  # a key that is not a string: orjson refuses it too
            name="Zoé",
            path=f"/api/v1/status/{NIR}",
        )
        structlog.get_logger("test").info("plain", name="Zoé", path=f"/x/{SPACED_NIR}")
    finally:
        configure_logging("json", "info", SUITE_LOG)
    odd, plain = _records(log_file)
    assert odd["huge"] == 2**70
    assert odd["by_number"] == {"7": "[NIR]"}
    assert odd["name"] == plain["name"] == "Zoé"
    assert odd["path"] == "/api/v1/status/[NIR]"
    assert plain["path"] == "/x/[NIR]"
    assert NIR not in log_file.read_text()
