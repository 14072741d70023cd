"""``gateway audit ...``: seal, verify, purge, a person's right of access, key rotation, grants."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table
from sqlalchemy import text

from gateway.audit.pseudonym import Pseudonymiser
from gateway.audit.purge import purge_before
from gateway.audit.roles import app_role_grants
from gateway.audit.schemas import SubjectKind
from gateway.audit.sealer import run_sealer_once, seal_until_stopped
from gateway.audit.signing import (
    CheckpointVerifier,
    KeyStoreCheckpointSigner,
    PinnedKeysVerifier,
    gateway_checkpoint_signer,
)
from gateway.audit.subject import identify, subject_history
from gateway.audit.verify import verify_trail
from gateway.cli.context import console, database, settings
from gateway.database import utcnow
from gateway.identifiers import InvalidIdentifierError

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
_ANCHOR = re.compile(r"([1-9][0-9]{0,18}):([0-9a-f]{64})")


def _signer() -> KeyStoreCheckpointSigner:
    return gateway_checkpoint_signer(settings(), database().sync_engine)


def _print_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, default=str))


@audit_app.command("seal")
def seal(
    as_json: JsonOption = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Keep sealing, every GATEWAY_AUDIT_SEAL_INTERVAL_SECONDS, until SIGTERM or "
            "Ctrl-C; then seal once more and exit. `gateway serve` runs this beside its workers.",
        ),
    ] = False,
    with_parent: Annotated[
        bool,
        typer.Option(
            "--with-parent", hidden=True, help="With --follow: stop when the parent dies."
        ),
    ] = False,
) -> None:
    """Seal every committed record now, or keep sealing with --follow."""
    if follow:
        _follow(with_parent)
        return
    result = run_sealer_once(database().sync_engine, _signer())
    if as_json:
        _print_json(
            {
                "sealed": result.sealed,
                "checkpoints": result.checkpoints,
                "head_position": result.head_position,
                "busy": result.busy,
                "refused": result.refused,
            }
        )
    elif result.busy:
        console().print("Another process is sealing right now; nothing done.")
    elif result.refused is None:
        console().print(
            f"Sealed {result.sealed} record(s) under {result.checkpoints} checkpoint(s)."
        )
    else:
        console(stderr=True).print(
            f"[red]Sealing refused[/red] ({result.refused}): the chain's head cannot be vouched "
            "for; run `gateway audit verify`."
        )
    if result.refused is not None:
        raise typer.Exit(1)


def _follow(with_parent: bool) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    parent = os.getppid()
    seal_until_stopped(
        database().sync_engine,
        _signer(),
        settings().audit_seal_interval_seconds,
        stop,
        # An orphan is adopted by another process: its parent id changes.
        keep_going=(lambda: os.getppid() == parent) if with_parent else lambda: True,
    )


def _refuse(detail: str) -> NoReturn:
    console(stderr=True).print(f"[red]Refused:[/red] {detail}")
    raise typer.Exit(2)


@audit_app.command("verify")
def verify(
    as_json: JsonOption = False,
    trusted_keys: Annotated[
        Path | None,
        typer.Option(
            "--trusted-keys",
            metavar="FILE",
            help="Check signatures against the audit keys in this JWK set only (as printed by "
            "`gateway keys export --use audit` and kept away from the database), not against "
            "the keys the master key vouches for; no master key needed.",
        ),
    ] = None,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            metavar="POSITION:CHAIN_HASH",
            help="A checkpoint witnessed outside the database (the sealer logs each one as "
            "audit_sealed, with head_position and head_hash): fail unless the chain still holds "
            "that hash at that position. A position removed since by a signed purge passes.",
        ),
    ] = None,
) -> None:
    """Recompute the chain and check every signature; exit 1 naming the first bad record."""
    witness: tuple[int, str] | None = None
    if anchor is not None:
        match = _ANCHOR.fullmatch(anchor.strip().lower())
        if match is None:
            _refuse("--anchor takes POSITION:CHAIN_HASH, a position from 1 and 64 hex digits.")
        witness = int(match[1]), match[2]
    verifier: CheckpointVerifier
    if trusted_keys is None:
        verifier = _signer()
    else:
        try:
            verifier = PinnedKeysVerifier.from_file(trusted_keys)
        except ValueError as exc:
            _refuse(f"--trusted-keys: {exc}.")
    report = verify_trail(database().sync_engine, verifier, witness=witness)
    if as_json:
        _print_json(report.as_dict())
    elif report.problem is None:
        console().print(
            f"Audit trail intact: {report.records} record(s) and {report.checkpoints} "
            f"checkpoint(s) verified from position {report.anchor_position + 1} to "
            f"{report.head_position} in {report.seconds} s; {report.pending} waiting to be sealed."
        )
    else:
        problem = report.problem
        console(stderr=True).print(
            f"[red]Audit trail NOT intact[/red] ({problem.code}): {problem.message}\n"
            f"First bad record: id {problem.record_id}, request id {problem.request_id}, "
            f"position {problem.position}."
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("purge")
def purge(
    before: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Delete sealed records older than this date (UTC midnight). "
            "Default: today minus the retention (GATEWAY_AUDIT_RETENTION_DAYS).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Apply retention: delete whole sealed segments older than the cutoff."""
    if before is None:
        today = utcnow().date()
        cutoff_date = today - dt.timedelta(days=settings().audit_retention_days)
    else:
        cutoff_date = before.date()
    cutoff = dt.datetime.combine(cutoff_date, dt.time(), tzinfo=dt.UTC)
    try:
        result = purge_before(database().sync_engine, _signer(), cutoff)
    except ValueError as exc:
        console(stderr=True).print(f"[red]Refused:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        _print_json(result.as_dict())
    elif result.anchor_position is None:
        console().print(f"Nothing sealed before {cutoff_date.isoformat()} is left to purge.")
    else:
        console().print(
            f"Purged {result.records_deleted} record(s) sealed up to position "
            f"{result.anchor_position} (before {cutoff_date.isoformat()})."
        )


@audit_app.command("subject")
def subject(
    identifier: Annotated[
        str | None,
        typer.Argument(
            help="The person's NIR or SIREN. Better left out: it is then read from standard "
            "input (typed without echo at a terminal), so that a NIR stays out of the shell "
            "history and the process list."
        ),
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="nir or siren; guessed from the length when omitted.")
    ] = None,
    include_refused: Annotated[
        bool, typer.Option(help="Also list refused requests, not only disclosures.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Who received this person's data, when and for which purpose (right of access)."""
    if kind not in (None, "nir", "siren"):
        console(stderr=True).print("[red]--kind is nir or siren.[/red]")
        raise typer.Exit(2)
    if identifier is None:
        identifier = _read_identifier()
    try:
        subject_kind, normalised = identify(identifier, kind)  # type: ignore[arg-type]
    except InvalidIdentifierError as exc:
        # The reason is fixed text: the identifier is never echoed.
        console(stderr=True).print(f"[red]Invalid identifier[/red] ({exc.code}): {exc.reason}")
        raise typer.Exit(2) from exc
    entries = subject_history(
        database().sync_engine,
        Pseudonymiser(database(), settings()),
        subject_kind,
        normalised,
        include_refused=include_refused,
    )
    if as_json:
        _print_json({"kind": subject_kind, "entries": [entry.as_dict() for entry in entries]})
        return
    _print_subject_table(subject_kind, entries)


def _read_identifier() -> str:
    if sys.stdin.isatty():
        return str(typer.prompt("NIR or SIREN", hide_input=True))
    return sys.stdin.readline().strip()


def _print_subject_table(kind: SubjectKind, entries: list[Any]) -> None:
    if not entries:
        console().print(f"No record names this {kind.upper()}.")
        return
    table = Table(
        "when (UTC)",
        "partner",
        "client",
        "data",
        "purpose",
        "recipient",
        "basis",
        "outcome",
        "request id",
    )
    for entry in entries:
        table.add_row(
            entry.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(entry.partner_id or ""),
            entry.client_id or "",
            f"{entry.connector or ''} v{entry.connector_version or ''}".strip(),
            entry.purpose or "",
            entry.recipient or "",
            f"consent {entry.consent_id}" if entry.consent_id else entry.legal_basis or "",
            entry.outcome,
            entry.request_id,
        )
    console().print(table)
    console().print(f"{len(entries)} record(s) name this {kind.upper()}.")


@audit_app.command("rotate-pseudonym-key")
def rotate_pseudonym_key(as_json: JsonOption = False) -> None:
    """Retire the active pseudonym key and create a new one (older records stay searchable)."""
    key_id = Pseudonymiser(database(), settings()).rotate()
    if as_json:
        _print_json({"key_id": key_id})
    else:
        console().print(f"New pseudonym key {key_id} is active.")


@audit_app.command("grant-app-role")
def grant_app_role(
    role: Annotated[str, typer.Argument(help="The PostgreSQL role the gateway connects as.")],
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the SQL, run nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Give the application's PostgreSQL role INSERT and SELECT on the trail, nothing more."""
    try:
        statements = app_role_grants(role)
    except ValueError as exc:
        console(stderr=True).print(f"[red]Refused:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not print_only:
        engine = database().sync_engine
        if engine.dialect.name != "postgresql":
            console(stderr=True).print("[red]Roles and grants exist on PostgreSQL only.[/red]")
            raise typer.Exit(2)
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    if as_json:
        _print_json({"role": role, "executed": not print_only, "statements": statements})
    else:
        typer.echo(";\n".join(statements) + ";")
