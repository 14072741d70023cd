"""Invariant 3: a NIR never appears in clear in the logs, whoever logs it and however."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import time
from pathlib import Path

import pytest
import structlog

from gateway.logging import (
    add_timestamp,
    bind_request_fields,
    configure_logging,
    start_request_fields,
)
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


def test_fields_bound_in_a_request_reach_its_lines_and_its_tasks_but_not_the_next_request(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "gateway.log"
    configure_logging("json", "info", log_file)
    log = structlog.get_logger("test")

    async def task_of_the_request() -> None:
        bind_request_fields(step="inside the task")  # the task's own copy
        log.info("in a task")

    async def request() -> None:
        start_request_fields(request_id="first")
        bind_request_fields(client_id="gw-client", partner_id=7)
        log.info("during", request_id="set by the line")
        await asyncio.create_task(task_of_the_request())
        log.info("after the task")
        start_request_fields(request_id="second")
        log.info("next request")

    try:
        asyncio.run(request())
    finally:
        configure_logging("json", "info", SUITE_LOG)
    during, in_task, after, following = _records(log_file)
    assert during["request_id"] == "set by the line"
    assert (during["client_id"], during["partner_id"]) == ("gw-client", 7)
    assert (in_task["request_id"], in_task["client_id"], in_task["step"]) == (
        "first",
        "gw-client",
        "inside the task",
    )
    assert "step" not in after
    assert following["request_id"] == "second"
    assert "client_id" not in following


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2026, 11, 28, 9, 6, 19, 835301, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 28, 9, 6, 19, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 28, 9, 6, 20, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC),
        dt.datetime(2027, 1, 1, 0, 0, 0, 7, tzinfo=dt.UTC),
    ],
)
def test_a_line_s_timestamp_is_utc_iso_8601_to_the_microsecond(
    moment: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The seconds' texts are kept from line to line: each moment follows another second.
    seconds = moment.timestamp()
    monkeypatch.setattr(time, "time", lambda: seconds)
    stamped = add_timestamp(None, "info", {})["timestamp"]
    expected = moment.isoformat().replace("+00:00", "Z")
    if moment.microsecond == 0:
        expected = expected.replace("Z", ".000000Z")
    assert stamped == expected


@pytest.mark.parametrize("seconds", [1_796_029_579.9999996, 1_796_029_579.0000004, 0.5])
def test_a_line_s_timestamp_rounds_as_the_standard_library_does(
    seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: seconds)
    stamped = add_timestamp(None, "info", {})["timestamp"]
    assert stamped == dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
