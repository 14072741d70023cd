"""Wrong passwords are throttled per name typed and client address, never by locking an account.

What each test guards against: an anonymous attacker locking a staff member out, guesses
sent in parallel slipping past the count of failures, and an answer that tells which names
exist. Each test says what would be wrong if it failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
from collections.abc import Callable

import httpx
import pytest
from console_support import ADMIN, AUDITOR, add_staff, csrf_of
from fastapi import FastAPI
from sqlalchemy import select, update
from structlog.testing import CapturingLogger

from gateway.audit.models import AuditRecord
from gateway.console import auth, routes
from gateway.console.auth import _reserve
from gateway.console.models import StaffAccount
from gateway.console.throttle import ALLOWED_ATTEMPTS, TIERS
from gateway.database import Database, utcnow
from gateway.settings import Settings

ATTACKER = "198.51.100.66"
ELSEWHERE = "203.0.113.7"
WRONG = "attacker guess 123"


def client_at(app: FastAPI, settings: Settings, address: str) -> httpx.AsyncClient:
    """A browser at ``address`` (the TCP peer the app sees)."""
    transport = httpx.ASGITransport(app=app, client=(address, 51000))
    return httpx.AsyncClient(transport=transport, base_url=settings.issuer)


async def try_login(
    http: httpx.AsyncClient, name: str, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    page = await http.get("/console/login")
    return await http.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "name": name, "password": password},
        headers=headers,
    )


class PasswordChecks:
    """Counts argon2 verifications (the work a guess costs), from any worker thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._real: Callable[[str, str], bool] = auth.verify_password
        monkeypatch.setattr(auth, "verify_password", self._verify)

    def _verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.calls += 1
        return self._real(password_hash, password)


def failed_logins(db: Database, name: str) -> int:
    with db.sync_session() as session:
        account = session.scalar(select(StaffAccount).where(StaffAccount.name == name))
        assert account is not None
        return account.failed_logins


def error_text(response: httpx.Response) -> str:
    """The login page's error, numbers blanked (the minutes left may tick between answers)."""
    match = re.search(r'<p id="erreur-connexion">([^<]*)</p>', response.text)
    return re.sub(r"[0-9]+", "N", match[1]) if match else ""


async def test_an_anonymous_attacker_cannot_lock_an_admin_out(
    app: FastAPI, settings: Settings, staff: None
) -> None:
    # A lock on the account would let five wrong passwords from anyone keep its owner out.
    async with client_at(app, settings, ATTACKER) as attacker:
        answers = [await try_login(attacker, ADMIN[0], WRONG) for _ in range(ALLOWED_ATTEMPTS + 2)]
    assert [answer.status_code for answer in answers] == [401] * ALLOWED_ATTEMPTS + [429] * 2
    async with client_at(app, settings, ELSEWHERE) as admin:
        response = await try_login(admin, *ADMIN)
    assert response.status_code == 303, "the admin is kept out by an anonymous attacker"


async def test_the_address_that_failed_is_refused_even_with_the_right_password(
    app: FastAPI, settings: Settings, staff: None, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with client_at(app, settings, ATTACKER) as attacker:
        for _ in range(ALLOWED_ATTEMPTS):
            assert (await try_login(attacker, AUDITOR[0], WRONG)).status_code == 401
        checks = PasswordChecks(monkeypatch)
        refused = await try_login(attacker, *AUDITOR)
    # Else the throttle would let a guesser keep testing passwords, just with other answers.
    assert refused.status_code == 429
    assert checks.calls == 0, "a throttled attempt must not test the password"
    assert 1 <= int(refused.headers["retry-after"]) <= TIERS[0].seconds
    assert "Trop de tentatives de connexion" in refused.text
    assert "gateway_console=" not in refused.headers.get("set-cookie", "")
    with db.sync_session() as session:
        record = session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
    assert record is not None
    assert (record.client_id, record.reason_code, record.http_status) == (
        "staff:alice",
        "login.throttled",
        429,
    )


async def test_concurrent_failures_are_all_counted(
    app: FastAPI, settings: Settings, staff: None, db: Database
) -> None:
    # A count read, then written back after the slow hash, would count parallel guesses once.
    clients = [client_at(app, settings, ATTACKER) for _ in range(ALLOWED_ATTEMPTS - 1)]
    try:
        answers = await asyncio.gather(
            *(try_login(c, AUDITOR[0], f"guess {i:08}") for i, c in enumerate(clients))
        )
    finally:
        for client in clients:
            await client.aclose()
    assert [answer.status_code for answer in answers] == [401] * (ALLOWED_ATTEMPTS - 1)
    assert failed_logins(db, AUDITOR[0]) == ALLOWED_ATTEMPTS - 1, "parallel failures were lost"


async def test_parallel_guesses_cannot_outrun_the_throttle(
    app: FastAPI, settings: Settings, staff: None, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = PasswordChecks(monkeypatch)
    guesses = 3 * ALLOWED_ATTEMPTS
    clients = [client_at(app, settings, ATTACKER) for _ in range(guesses)]
    try:
        answers = await asyncio.gather(
            *(try_login(c, AUDITOR[0], f"guess {i:08}") for i, c in enumerate(clients))
        )
    finally:
        for client in clients:
            await client.aclose()
    statuses = sorted(answer.status_code for answer in answers)
    # Each guess takes its rank before its hash: no more than the allowance is ever tested.
    assert statuses == [401] * ALLOWED_ATTEMPTS + [429] * (guesses - ALLOWED_ATTEMPTS)
    assert checks.calls == ALLOWED_ATTEMPTS
    assert failed_logins(db, AUDITOR[0]) == ALLOWED_ATTEMPTS


async def test_real_unknown_and_disabled_names_get_the_same_answers(
    app: FastAPI, settings: Settings, staff: None, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An answer only real accounts get (such as "verrouillé") would enumerate the names.
    add_staff(db, "carol", "auditor", "carol's password, long")
    with db.sync_session.begin() as session:
        session.execute(
            update(StaffAccount).where(StaffAccount.name == "carol").values(disabled_at=utcnow())
        )
    checks = PasswordChecks(monkeypatch)
    seen: dict[str, list[tuple[int, str, bool]]] = {}
    work: dict[str, int] = {}
    async with client_at(app, settings, ATTACKER) as attacker:
        for name in (AUDITOR[0], "no-such-user", "carol"):
            before = checks.calls
            answers = [await try_login(attacker, name, WRONG) for _ in range(ALLOWED_ATTEMPTS + 2)]
            seen[name] = [
                (answer.status_code, error_text(answer), "retry-after" in answer.headers)
                for answer in answers
            ]
            work[name] = checks.calls - before
    assert seen[AUDITOR[0]] == seen["no-such-user"] == seen["carol"]
    assert seen[AUDITOR[0]][-1][0] == 429
    # The same argon2 work for each name: timing does not tell them apart either.
    assert work == dict.fromkeys((AUDITOR[0], "no-such-user", "carol"), ALLOWED_ATTEMPTS)
    assert all("verrouillé" not in text for answers in seen.values() for _, text, _ in answers)


async def test_signing_in_often_is_never_throttled(
    app: FastAPI, settings: Settings, staff: None
) -> None:
    # A right password gives its rank back: only wrong ones count.
    async with client_at(app, settings, ELSEWHERE) as http:
        for _ in range(ALLOWED_ATTEMPTS + 2):
            assert (await try_login(http, *AUDITOR)).status_code == 303
            http.cookies.clear()


async def test_a_right_password_does_not_wipe_the_failures_counted(
    app: FastAPI, settings: Settings, staff: None, db: Database
) -> None:
    # Else an attacker sharing the user's address would get a fresh allowance at each login.
    async with client_at(app, settings, ATTACKER) as http:
        for _ in range(ALLOWED_ATTEMPTS - 1):
            assert (await try_login(http, AUDITOR[0], WRONG)).status_code == 401
        assert (await try_login(http, *AUDITOR)).status_code == 303
        http.cookies.clear()
        assert failed_logins(db, AUDITOR[0]) == 0, "the account's count restarts at a login"
        assert (await try_login(http, AUDITOR[0], WRONG)).status_code == 401
        assert (await try_login(http, AUDITOR[0], WRONG)).status_code == 429


async def test_a_forwarded_header_does_not_change_the_address(
    app: FastAPI, settings: Settings, staff: None
) -> None:
    # The app does not trust proxy headers: a guesser would send a new one with each guess.
    async with client_at(app, settings, ATTACKER) as attacker:
        for number in range(ALLOWED_ATTEMPTS + 1):
            forged = {"X-Forwarded-For": f"192.0.2.{number}", "X-Real-IP": f"192.0.2.{number}"}
            answer = await try_login(attacker, AUDITOR[0], WRONG, headers=forged)
    assert answer.status_code == 429


async def test_an_account_disabled_during_the_password_check_opens_nothing(
    app: FastAPI, settings: Settings, staff: None, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = auth.verify_password

    def disabled_meanwhile(password_hash: str, password: str) -> bool:
        # What `gateway staff disable` does from another process while argon2 runs.
        with db.sync_session.begin() as session:
            session.execute(update(StaffAccount).values(disabled_at=utcnow()))
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", disabled_meanwhile)
    async with client_at(app, settings, ELSEWHERE) as http:
        response = await try_login(http, *AUDITOR)
    assert response.status_code == 401
    assert "gateway_console=" not in response.headers.get("set-cookie", "")


def test_the_wait_grows_with_repeated_failures(db: Database) -> None:
    short, long = TIERS
    start = dt.datetime(2026, 3, 2, 10, 0, 5, tzinfo=dt.UTC)  # 5 s into an hour
    for _ in range(short.attempts):
        assert not _reserve(db, AUDITOR[0], ATTACKER, start).refused
    first = _reserve(db, AUDITOR[0], ATTACKER, start)
    assert first.refused
    assert first.retry_after == short.seconds - 5
    # The next quarter hour allows as many again, until the hour's allowance is spent too.
    later = start + dt.timedelta(seconds=short.seconds)
    for _ in range(long.attempts - short.attempts):
        assert not _reserve(db, AUDITOR[0], ATTACKER, later).refused
    second = _reserve(db, AUDITOR[0], ATTACKER, later)
    assert second.refused
    assert second.retry_after == long.seconds - short.seconds - 5
    assert second.retry_after > first.retry_after
    assert not _reserve(db, AUDITOR[0], ATTACKER, start + dt.timedelta(hours=1)).refused
    # Another address, and another name from this address, were never slowed down.
    assert not _reserve(db, AUDITOR[0], ELSEWHERE, later).refused
    assert not _reserve(db, ADMIN[0], ATTACKER, later).refused


def test_every_gateway_process_sees_the_same_counters(db: Database, settings: Settings) -> None:
    # Several processes serve one database: counters kept in memory would multiply the allowance.
    other_process = Database(settings.database_url)
    try:
        now = utcnow()
        for _ in range(ALLOWED_ATTEMPTS):
            assert not _reserve(db, AUDITOR[0], ATTACKER, now).refused
        assert _reserve(other_process, AUDITOR[0], ATTACKER, now).refused
    finally:
        other_process.sync_engine.dispose()


async def test_repeated_failures_are_logged_for_ops_without_the_password(
    app: FastAPI, settings: Settings, staff: None, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = CapturingLogger()
    monkeypatch.setattr(routes, "log", logger)
    # Nine wrong passwords already, from elsewhere: the next one is the tenth for the account.
    with db.sync_session.begin() as session:
        session.execute(
            update(StaffAccount).where(StaffAccount.name == AUDITOR[0]).values(failed_logins=9)
        )
    async with client_at(app, settings, ATTACKER) as attacker:
        for _ in range(ALLOWED_ATTEMPTS + 1):
            await try_login(attacker, AUDITOR[0], "s3cret guess, never logged")
    events = [call.args[0] for call in logger.calls]
    assert events.count("console_login_refused") == ALLOWED_ATTEMPTS
    [account_alert] = [c.kwargs for c in logger.calls if c.args[0].startswith("console_account")]
    assert account_alert["account_failures"] == 10
    assert account_alert["staff"] == AUDITOR[0]
    [repeated] = [c.kwargs for c in logger.calls if c.args[0] == "console_login_failures_repeated"]
    assert (repeated["attempts"], repeated["client_address"]) == (ALLOWED_ATTEMPTS, ATTACKER)
    assert events[-1] == "console_login_throttled"
    assert "s3cret guess" not in repr(logger.calls)
