"""Structured logs: JSON in production, readable on a terminal, NIRs masked everywhere.

Every record, ours or a library's (uvicorn, SQLAlchemy), goes through the same processors, so
the redaction of NIR-shaped strings cannot be bypassed by logging through the standard library.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog

from gateway.identifiers import redact_nirs

_OURS = "_gateway_handler"


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_nirs(value)
    if isinstance(value, Mapping):
        return {key: _redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact(item) for item in value]
    return value


def redact_nir(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Mask anything shaped like a NIR, valid key or not, in every field of a record."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact(value)
    return event_dict


def _render_exception_then_redact(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> Any:
    # Tracebacks can quote local values: render them to text first so redaction sees them.
    return redact_nir(
        logger, method, structlog.processors.format_exc_info(logger, method, event_dict)
    )


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
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    final: list[Any] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        _render_exception_then_redact if use_json else redact_nir,
        renderer,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(formatter)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=shared,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _render_exception_then_redact,
                    structlog.processors.JSONRenderer(),
                ],
            )
        )
        handlers.append(file_handler)
    for handler in handlers:
        setattr(handler, _OURS, True)
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
