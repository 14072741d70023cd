"""``gateway staff add|disable|list``: accounts made from the command line, passwords unseen."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from console_support import login
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.cli.app import app as cli
from gateway.cli.context import database
from gateway.console.auth import verify_password
from gateway.console.models import StaffAccount
from gateway.database import Database
from gateway.settings import Settings, get_settings

Run = Callable[..., dict[str, Any]]
PASSWORD = "a staff password, long"


@pytest.fixture
def gateway(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "json")
    get_settings.cache_clear()
    database.cache_clear()
    runner = CliRunner()

    def run(*args: str, status: int = 0, stdin: str | None = None) -> dict[str, Any]:
        result = runner.invoke(cli, [*args, "--json"], input=stdin)
        assert result.exit_code == status, result.output
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1, result.stdout
        return dict(json.loads(lines[0]))

    yield run
    database().sync_engine.dispose()
    database.cache_clear()
    get_settings.cache_clear()


def test_add_reads_the_password_from_stdin_and_stores_an_argon2_hash(
    gateway: Run, db: Database
) -> None:
    added = gateway(
        "staff", "add", "bob", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added["name"] == "bob"
    assert added["role"] == "admin"
    assert added["disabled_at"] is None
    with db.sync_session() as session:
        account = session.scalars(select(StaffAccount)).one()
    assert account.password_hash.startswith("$argon2id$")
    assert verify_password(account.password_hash, PASSWORD), "the newline is not part of it"
    assert PASSWORD not in json.dumps(added)


def test_add_refuses_bad_input(gateway: Run) -> None:
    short = gateway(
        "staff", "add", "bob", "--role", "auditor", "--password-stdin", stdin="short\n", status=1
    )
    assert short["error"]["code"] == "staff.invalid"
    bad_name = gateway(
        "staff",
        "add",
        "Bob Smith",
        "--role",
        "auditor",
        "--password-stdin",
        stdin=PASSWORD,
        status=1,
    )
    assert bad_name["error"]["code"] == "staff.invalid"
    gateway("staff", "add", "bob", "--role", "auditor", "--password-stdin", stdin=PASSWORD)
    twice = gateway(
        "staff", "add", "bob", "--role", "admin", "--password-stdin", stdin=PASSWORD, status=1
    )
    assert twice["error"]["code"] == "staff.exists"
    result = CliRunner().invoke(
        cli, ["staff", "add", "eve", "--role", "root", "--password-stdin"], input=PASSWORD
    )
    assert result.exit_code == 2, "the role is auditor or admin"


async def test_disable_ends_the_open_sessions(
    gateway: Run, app: FastAPI, settings: Settings
) -> None:
    gateway("staff", "add", "bob", "--role", "auditor", "--password-stdin", stdin=PASSWORD)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=settings.issuer
    ) as http:
        await login(http, "bob", PASSWORD)
        disabled = gateway("staff", "disable", "bob")
        assert disabled["sessions_ended"] == 1
        assert disabled["disabled_at"] is not None
        assert (await http.get("/console/audit")).status_code == 303
        page = await http.get("/console/login")
        refused = await http.post(
            "/console/login",
            data={
                "csrf_token": page.text.split('name="csrf_token" value="')[1].split('"')[0],
                "name": "bob",
                "password": PASSWORD,
            },
        )
        assert refused.status_code == 401
    assert gateway("staff", "disable", "nobody", status=1)["error"]["code"] == "staff.unknown"


def test_list_shows_every_account_and_its_state(gateway: Run) -> None:
    gateway("staff", "add", "bob", "--role", "auditor", "--password-stdin", stdin=PASSWORD)
    gateway("staff", "add", "ann", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    gateway("staff", "disable", "bob")
    listed = gateway("staff", "list")["staff"]
    assert [(s["name"], s["role"], s["disabled_at"] is not None) for s in listed] == [
        ("ann", "admin", False),
        ("bob", "auditor", True),
    ]
    # Wrong passwords since the last login: what ops look at when the logs warn of guessing.
    assert [s["failed_logins"] for s in listed] == [0, 0]
