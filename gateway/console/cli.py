"""``gateway staff add|disable|list``: the console's staff accounts.

Passwords never appear on the command line (where ``ps`` and shell history would show them):
they are typed at a hidden prompt, or read from standard input with ``--password-stdin``.
Every verb takes ``--json`` and then prints one JSON object, errors included.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table
from sqlalchemy.exc import IntegrityError

from gateway.cli.context import console, database
from gateway.console.accounts import StaffExistsError, add_staff_account
from gateway.console.models import StaffAccount, StaffRole
from gateway.console.repository import StaffRepository
from gateway.database import utcnow

staff_app = typer.Typer(help="Staff accounts of the ops console.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _fail(as_json: bool, code: str, detail: str) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": {"code": code, "detail": detail}}))
    else:
        console(stderr=True).print(f"[red]Error[/red] ({code}): {detail}")
    raise typer.Exit(1)


def _view(account: StaffAccount) -> dict[str, Any]:
    return {
        "name": account.name,
        "role": account.role,
        "created_at": account.created_at.isoformat(),
        "disabled_at": account.disabled_at.isoformat() if account.disabled_at else None,
        "last_login_at": account.last_login_at.isoformat() if account.last_login_at else None,
        # Many of them: someone is guessing this account's password (see the warnings logged).
        "failed_logins": account.failed_logins,
    }


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@staff_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name: lower-case letters, digits, . _ -")],
    role: Annotated[
        StaffRole, typer.Option(help="auditor: audit trail and consents; admin: also the registry.")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a staff account (the password is asked for, or read from stdin)."""
    try:
        with database().sync_session.begin() as session:
            view = _view(add_staff_account(session, name, role, _read_password(password_stdin)))
    except (StaffExistsError, IntegrityError):
        _fail(as_json, "staff.exists", f"a staff account named {name!r} already exists")
    except ValueError as exc:
        _fail(as_json, "staff.invalid", str(exc))
    if as_json:
        typer.echo(json.dumps(view))
    else:
        console().print(f"Staff account {name} ({role.value}) created.")


@staff_app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="Login name of the account.")],
    as_json: JsonFlag = False,
) -> None:
    """Disable an account and end its open sessions at once."""
    with database().sync_session.begin() as session:
        staff = StaffRepository(session)
        account = staff.by_name(name)
        if account is None:
            _fail(as_json, "staff.unknown", f"no staff account is named {name!r}")
        now = utcnow()
        if account.disabled_at is None:
            account.disabled_at = now
        ended = staff.end_sessions(account.id, now)
        view = {**_view(account), "sessions_ended": ended}
    if as_json:
        typer.echo(json.dumps(view))
    else:
        console().print(f"Staff account {name} disabled; {ended} open session(s) ended.")


@staff_app.command("list")
def list_accounts(as_json: JsonFlag = False) -> None:
    """Every staff account, with its role and state."""
    with database().sync_session() as session:
        views = [_view(account) for account in StaffRepository(session).all()]
    if as_json:
        typer.echo(json.dumps({"staff": views}))
        return
    table = Table("name", "role", "created", "last login", "failed logins", "state")
    for view in views:
        table.add_row(
            view["name"],
            view["role"],
            view["created_at"][:19],
            (view["last_login_at"] or "")[:19],
            str(view["failed_logins"]),
            "disabled" if view["disabled_at"] else "active",
        )
    console().print(table)
