"""Structured logs: JSON in production, readable on a terminal, NIRs masked everywhere.

Every record, ours or a library's (uvicorn, SQLAlchemy), goes through the same processors, so
the redaction of NIR-shaped strings cannot be bypassed by logging through the standard library.

Libraries' records reach our handlers through the standard library. Our own lines (structlog)
are rendered by the same final processors and written to the same handlers' streams directly:
the standard library's record, handler chain and formatter cost as much again as the line
itself, and the request path writes one line per request.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import structlog

from gateway.identifiers import redact_nirs

_OURS = "_gateway_handler"
_RENDER = "_gateway_render"


# What every line logged while serving a request carries (its request id, then the client once
# the token is checked). One variable holding the request's fields: structlog's contextvars
# helpers set one variable per field and scan the task's whole context at every line, which
# in place cost the request line about as much as the rest of it (benchmarks/RESULTS.md).
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})
_request_fields = ContextVar("gateway_request_fields", default=_NO_FIELDS)


def start_request_fields(**fields: Any) -> None:
    """The fields of every line logged from here on in this request (and in tasks it starts)."""
    _request_fields.set(fields)


def bind_request_fields(**fields: Any) -> None:
    """Add fields to the current request's lines."""
    _request_fields.set({**_request_fields.get(), **fields})


def merge_request_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The request's fields, under those the line sets itself."""
    for key, value in _request_fields.get().items():
        event_dict.setdefault(key, value)
    return event_dict


class _UtcSecond:
    """The ISO 8601 text of the current second, kept until the second changes: formatting a
    whole timestamp at every line costs more than the rest of its fields."""

    # One tuple, replaced at once, so that a thread never reads a second with another's text.
    current: tuple[int, str] = (-1, "")


def add_timestamp(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """``timestamp``: UTC, ISO 8601, to the microsecond (``2026-11-28T09:06:19.835301Z``)."""
    # Rounded to the nearest microsecond, as ``datetime.fromtimestamp`` rounds.
    fraction, whole = math.modf(time.time())
    second, microsecond = int(whole), round(fraction * 1_000_000)
    if microsecond == 1_000_000:
        second, microsecond = second + 1, 0
    cached, text = _UtcSecond.current
    if cached != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _UtcSecond.current = (second, text)
    event_dict["timestamp"] = f"{text}.{microsecond:06d}Z"
    return event_dict


def redact_line(_logger: Any, _method: str, line: str) -> str:
    """Mask anything shaped like a NIR in a rendered line: field values, keys, tracebacks.

    The rendering keeps a NIR's digits, A or B as they were, and ``NIR_SHAPE`` knows the
    separators both as written and as JSON escapes them, so one pass over the line finds every
    NIR any field held, however deeply nested, for less than one pass per field.
    """
    return redact_nirs(line)


def json_line(value: Any, **options: Any) -> str:
    """A line's JSON, by orjson: about a tenth of the standard library's cost, and the request
    path renders one line per request. What orjson refuses (an integer beyond 64 bits, a key
    that is not a string) is rendered by the standard library instead."""
    try:
        return orjson.dumps(value, default=options.get("default")).decode()
    except TypeError:
        return json.dumps(value, **options)


# A handler's final processors, applied to a copy of a line's event dict.
Render = Callable[[MutableMapping[str, Any]], str]


def _final_chain(processors: list[Any]) -> Render:
    def render(event_dict: MutableMapping[str, Any]) -> str:
        rendered: Any = dict(event_dict)
        for processor in processors:
            rendered = processor(None, "", rendered)
        return str(rendered)

    return render


class HandlerWriter:
    """structlog's logger: each line rendered per handler format, written to our handlers."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _write(self, **event_dict: Any) -> None:
        rendered: dict[Render, str] = {}
        for handler in logging.getLogger().handlers:
            render = getattr(handler, _RENDER, None)
            if render is None:
                continue
            line = rendered.get(render)
            if line is None:
                line = rendered[render] = render(event_dict)
            _write_line(handler, line)

    debug = info = warning = error = critical = msg = _write


def _write_line(handler: logging.Handler, line: str) -> None:
    handler.acquire()
    try:
        stream = getattr(handler, "stream", None)
        if stream is None:  # a file handler already closed
            raise ValueError("the handler has no open stream")
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        # What the standard library does with a failing handler: report it, never raise.
        handler.handleError(logging.makeLogRecord({"msg": line}))
    finally:
        handler.release()


def configure_logging(
    log_format: str = "auto", level: str = "info", log_file: Path | None = None
) -> None:
    """Route every record through our processors; ``log_file`` adds a JSON copy on disk.

    Handlers installed by someone else (a test harness, an embedding process) are kept.
    """
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    # No line shows the caller's source line, thread or process: the standard library need
    # not find them for every record (its documented optimisations).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    ours: list[Any] = [
        merge_request_fields,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_timestamp,
    ]
    foreign = [*ours, structlog.stdlib.ExtraAdder()]
    # Tracebacks become text before rendering, so that the line's redaction sees them.
    json_final: list[Any] = [
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(serializer=json_line),
        redact_line,
    ]
    stderr_final: list[Any] = (
        json_final
        if use_json
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()), redact_line]
    )
    structlog.configure(
        processors=ours,
        logger_factory=HandlerWriter,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    destinations: list[tuple[logging.Handler, list[Any]]] = [
        (logging.StreamHandler(sys.stderr), stderr_final)
    ]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        destinations.append((logging.FileHandler(log_file, encoding="utf-8"), json_final))
    handlers = []
    shared_renders: dict[int, Render] = {}
    for handler, final in destinations:
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=foreign,
                processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
            )
        )
        # One render per format and line, however many handlers share it.
        render = shared_renders.setdefault(id(final), _final_chain(final))
        setattr(handler, _RENDER, render)
        setattr(handler, _OURS, True)
        handlers.append(handler)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Our own middleware logs each request once, with its request id.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
