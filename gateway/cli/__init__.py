"""The ``gateway`` command line: one Typer app, one sub-command group per domain."""

from __future__ import annotations

from gateway.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
