"""``gateway demo``: the embedded default migrated, seeded, and four partners at work on it."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from gateway.cli.context import console, settings
from gateway.logging import configure_logging


def demo_command(
    port: Annotated[
        int, typer.Option(help="Port of the gateway (0: any free port).", min=0, max=65535)
    ] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")] = "127.0.0.1",
) -> None:
    """Migrate, seed, start the gateway and a mock Pôle emploi, play the four partners'
    scenarios over HTTP and print what each asked and received; then keep serving until
    Ctrl-C."""
    from gateway.demo.run import run_demo

    current = settings()
    if "GATEWAY_LOG_LEVEL" not in os.environ:
        # The account printed is the demo's output: only warnings and errors interleave it.
        current = current.model_copy(update={"log_level": "warning"})
        configure_logging(current.log_format, current.log_level)
    raise typer.Exit(run_demo(current, host=host, port=port, out=console()))
