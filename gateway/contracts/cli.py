"""``gateway contracts freeze|check`` and ``gateway openapi``: the published API contracts.

``gateway openapi`` writes ``openapi/openapi.json`` from the code; ``--check`` exits 1 when the
committed file differs. ``gateway contracts freeze`` writes ``contracts/schemas/<key>.json`` for
every connector version and refuses to overwrite a frozen version with an incompatible schema
unless ``--force``; ``gateway contracts check`` exits 1 listing the breaking changes.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.registry import VERSIONS
from gateway.cli.context import console
from gateway.contracts.compat import Change, compare_all
from gateway.contracts.schemas import (
    CONTRACTS_DIRECTORY,
    contract_path,
    current_contracts,
    generate_document,
    read_frozen,
)
from gateway.openapi import iter_operations, render

__all__ = ["OPENAPI_PATH", "contracts_app", "openapi_command"]

OPENAPI_PATH = Path("openapi/openapi.json")
REGENERATE_OPENAPI = "gateway openapi"
REGENERATE_CONTRACTS = "gateway contracts freeze"

contracts_app = typer.Typer(
    help="Frozen schemas of the published connector versions.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
DirectoryOption = Annotated[
    Path, typer.Option("--dir", help="Folder of the frozen schemas, one file per version.")
]


def _print_changes(title: str, changes: list[Change], style: str) -> None:
    if not changes:
        return
    out = console()
    out.print(f"[{style}]{title}[/{style}] ({len(changes)})")
    for change in changes:
        out.print(f"  - {change}", markup=False, highlight=False)


@contracts_app.command("freeze")
def contracts_freeze(
    directory: DirectoryOption = CONTRACTS_DIRECTORY,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite a frozen version even with breaking changes (they break partners).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the frozen schema of every connector version, refusing breaking changes."""
    current = current_contracts(VERSIONS)
    report = compare_all(read_frozen(directory), current)
    breaking_keys = {change.connector for change in report.breaking}
    refused = sorted(breaking_keys & current.keys()) if not force else []
    written: list[str] = []
    unchanged: list[str] = []
    directory.mkdir(parents=True, exist_ok=True)
    for key, contract in current.items():
        if key in refused:
            continue
        path = contract_path(directory, key)
        text = render(contract)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            unchanged.append(key)
            continue
        path.write_text(text, encoding="utf-8")
        written.append(key)
    # A version no longer served cannot be fixed by freezing: its file must go, deliberately.
    unresolved = [
        change
        for change in report.breaking
        if change.connector in refused or change.kind == "version_removed"
    ]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "directory": str(directory),
                    "written": written,
                    "unchanged": unchanged,
                    "refused": refused,
                    "forced": sorted(breaking_keys & set(written)) if force else [],
                    "breaking": [change.as_dict() for change in report.breaking],
                }
            )
        )
    else:
        out = console()
        for key in written:
            out.print(f"Wrote {contract_path(directory, key)}", highlight=False)
        if unchanged:
            out.print(f"{len(unchanged)} version(s) already frozen as they are.")
        _print_changes(
            "Forced over breaking changes" if force else "Refused: breaking changes",
            report.breaking,
            "yellow" if force else "red",
        )
        if refused:
            out.print(
                "A published version must not change incompatibly: publish a new version "
                "instead, or pass --force if no partner can have relied on it yet."
            )
    if unresolved:
        raise typer.Exit(1)


@contracts_app.command("check")
def contracts_check(
    directory: DirectoryOption = CONTRACTS_DIRECTORY,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Also fail when compatible changes are not frozen yet."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Compare the frozen schemas with the code; exit 1 listing any breaking change."""
    current = current_contracts(VERSIONS)
    frozen = read_frozen(directory)
    report = compare_all(frozen, current)
    stale = stale_contracts(directory, current)
    failed = not report.ok or (strict and bool(stale))
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": not failed,
                    "breaking": [change.as_dict() for change in report.breaking],
                    "compatible": [change.as_dict() for change in report.compatible],
                    "not_frozen": stale,
                }
            )
        )
    else:
        _print_changes("Breaking changes", report.breaking, "red")
        _print_changes("Compatible changes", report.compatible, "green")
        out = console()
        if stale:
            out.print(
                f"Not frozen as generated: {', '.join(stale)}; run `{REGENERATE_CONTRACTS}`.",
                highlight=False,
            )
        if report.ok:
            out.print(f"{len(current)} connector version(s) compatible with their frozen schema.")
    if failed:
        raise typer.Exit(1)


def stale_contracts(directory: Path, current: dict[str, Any]) -> list[str]:
    """Versions whose frozen file is missing or differs from what the code generates."""
    stale = []
    for key, contract in current.items():
        path = contract_path(directory, key)
        if not path.is_file() or path.read_text(encoding="utf-8") != render(contract):
            stale.append(key)
    return stale


def openapi_command(
    output: Annotated[
        Path, typer.Option("--output", help="Where the committed document lives.")
    ] = OPENAPI_PATH,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the file differs from the code.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the gateway's OpenAPI document; with --check, compare it with the file instead."""
    document = generate_document()
    text = render(document)
    operations = sum(1 for _ in iter_operations(document))
    if check:
        existing = output.read_text(encoding="utf-8") if output.is_file() else ""
        same = existing == text
        if as_json:
            typer.echo(json.dumps({"path": str(output), "up_to_date": same}))
        elif same:
            console().print(f"{output} is up to date ({operations} operations).", highlight=False)
        else:
            diff = difflib.unified_diff(
                existing.splitlines(),
                text.splitlines(),
                f"{output} (committed)",
                f"{output} (generated)",
                lineterm="",
                n=1,
            )
            out = console(stderr=True)
            out.print(
                f"{output} differs from the code: run `{REGENERATE_OPENAPI}` and commit it.",
                highlight=False,
            )
            for line in list(diff)[:60]:
                out.print(line, markup=False, highlight=False)
        if not same:
            raise typer.Exit(1)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    if as_json:
        typer.echo(json.dumps({"path": str(output), "operations": operations}))
    else:
        console().print(f"Wrote {output} ({operations} operations).", highlight=False)
