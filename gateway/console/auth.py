"""Staff authentication: argon2 passwords, database-backed sessions, CSRF tokens.

- Passwords are hashed with argon2id (``argon2-cffi`` defaults, RFC 9106's second recommended
  profile); a hash made with weaker parameters is upgraded at the next successful login.
- Wrong passwords are throttled per name typed and client address, never by locking the
  account (``throttle``): an attacker cannot keep a staff member out, and the answer is the
  same whether the name exists or not. Unknown and disabled names cost the same argon2 work
  as known ones, so timing does not tell which names exist either.
- A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure, and named with
  the ``__Host-`` prefix, behind https); the database keeps its SHA-256. It ends at logout,
  after ``console_session_timeout_minutes`` without a request, after twelve hours whatever
  happens, and when the account is disabled.
- Every form that changes state carries the session's CSRF token (synchroniser token); the
  login form, which has no session yet, carries a token that must match a cookie set with it
  (double submit).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from gateway.console.models import StaffAccount, StaffRole
from gateway.console.repository import (
    LoginThrottleRepository,
    StaffRepository,
    StaffSessionRepository,
)
from gateway.console.throttle import KEEP_SECONDS, Reservation, attempt_key, windows_at
from gateway.database import Database, utcnow
from gateway.errors import ForbiddenError, UnauthorizedError
from gateway.settings import Settings

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024  # argon2 cost does not depend on it, but parsing does
NAME_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SESSION_MAX_AGE: Final = dt.timedelta(hours=12)
# last_seen_at is written at most this often: a timeout counted in minutes does not need a
# database write on every page view.
TOUCH_INTERVAL: Final = dt.timedelta(seconds=30)
CSRF_FIELD: Final = "csrf_token"

_hasher = PasswordHasher()


class LoginRequiredError(UnauthorizedError):
    """No valid session: the console answers with a redirect to its login page."""

    def __init__(self) -> None:
        super().__init__("console.login_required", "Sign in to use the console.")


class CsrfError(ForbiddenError):
    def __init__(self) -> None:
        super().__init__(
            "console.csrf_invalid",
            "The form's security token is missing or out of date: reload the page and retry.",
        )


class AdminOnlyError(ForbiddenError):
    def __init__(self) -> None:
        super().__init__("console.admin_only", "This page is for administrators only.")


# --- passwords -----------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            "a staff name is 1 to 64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


# --- tokens and cookies --------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(expected: str | None, given: object) -> bool:
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True)
class CookiePolicy:
    secure: bool
    session_cookie: str
    login_cookie: str

    def set(self, response: Response, name: str, value: str) -> None:
        """Set a console cookie: HttpOnly, SameSite=Strict, for the session only."""
        response.set_cookie(
            name, value, httponly=True, samesite="strict", secure=self.secure, path="/"
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, httponly=True, samesite="strict", secure=self.secure, path="/")


def cookie_policy(settings: Settings) -> CookiePolicy:
    secure = settings.console_secure_cookies
    if secure is None:
        secure = settings.issuer.lower().startswith("https://")
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and
    # for path "/": a sibling subdomain cannot plant or shadow it.
    prefix = "__Host-" if secure else ""
    return CookiePolicy(
        secure=secure,
        session_cookie=f"{prefix}gateway_console",
        login_cookie=f"{prefix}gateway_console_login",
    )


# --- sessions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffContext:
    """Who is behind a console request; ``csrf_token`` goes into every form of the page."""

    staff_id: int
    name: str
    role: str
    session_id: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN

    @property
    def audit_client_id(self) -> str:
        return f"staff:{self.name}"


@dataclass(frozen=True)
class LoginCheck:
    """A login attempt checked: the ``account`` when the password matched, else a code.

    ``retry_after`` (seconds) comes with ``login.throttled``; ``rank`` is the attempt's rank
    among those of its name and address this window, ``account_failures`` the account's wrong
    passwords since its last login (``None`` for an unknown name): both for the logs only.
    """

    account: StaffAccount | None = None
    failure: str | None = None
    retry_after: int = 0
    rank: int = 0
    fills_allowance: bool = False
    account_failures: int | None = None


def _timeout(settings: Settings) -> dt.timedelta:
    return dt.timedelta(minutes=settings.console_session_timeout_minutes)


def _reserve(db: Database, name: str, address: str, now: dt.datetime) -> Reservation:
    epoch = int(now.timestamp())
    windows = windows_at(attempt_key(name, address), epoch)
    with db.sync_session.begin() as session:
        throttle = LoginThrottleRepository(session)
        ranks = throttle.reserve(windows)
        reservation = Reservation(windows, ranks, epoch)
        if reservation.refused:
            # Refused before any password check: the rank goes back, so that hammering a
            # throttled name does not make its wait longer, nor count as wrong passwords.
            throttle.release(windows)
    return reservation


def _check_password(
    db: Database, name: str, password: str, reservation: Reservation, now: dt.datetime
) -> LoginCheck:
    """Check the password of an attempt that holds a rank; runs in a worker thread."""
    known_name = NAME_PATTERN.fullmatch(name) is not None
    account: StaffAccount | None = None
    if known_name:
        with db.sync_session() as session:
            account = StaffRepository(session).by_name(name)
            if account is not None:
                session.expunge(account)
    if account is None or account.disabled_at is not None:
        # The same argon2 work as a real check, so timing does not tell names apart.
        verify_password(_decoy_hash(), password)
        failure = "login.unknown" if account is None else "login.disabled"
    elif not verify_password(account.password_hash, password):
        failure = "login.bad_password"
    else:
        rehashed = _hasher.hash(password) if needs_rehash(account.password_hash) else None
        with db.sync_session.begin() as session:
            # Re-checked after the slow hash: an account disabled meanwhile opens nothing.
            if StaffRepository(session).record_login(account.id, now, rehashed):
                # A right password is no failure: its rank goes back.
                LoginThrottleRepository(session).release(reservation.windows)
                return LoginCheck(account=account, rank=reservation.rank)
        failure = "login.disabled"
    with db.sync_session.begin() as session:
        # The rank taken stays: it is what counts this failure for the name and address.
        # Names that cannot be an account skip the statement (and never reach the database).
        failures = StaffRepository(session).count_failure(name) if known_name else None
        LoginThrottleRepository(session).purge(int(now.timestamp()) - KEEP_SECONDS)
    return LoginCheck(
        failure=failure,
        rank=reservation.rank,
        fills_allowance=reservation.fills_allowance,
        account_failures=failures,
    )


def _attempt(db: Database, name: str, password: str, address: str, now: dt.datetime) -> LoginCheck:
    reservation = _reserve(db, name, address, now)
    if reservation.refused:
        # No argon2 work at all: the answer is the same for every name, and a flood of
        # throttled guesses costs the server next to nothing.
        return LoginCheck(
            failure="login.throttled", retry_after=reservation.retry_after, rank=reservation.rank
        )
    return _check_password(db, name, password, reservation, now)


async def check_login(db: Database, name: str, password: str, address: str) -> LoginCheck:
    """Check a name and password typed from ``address`` (throttling and counting failures);
    opens nothing."""
    if len(password) > MAX_PASSWORD_LENGTH or len(name) > 256:
        return LoginCheck(failure="login.invalid")
    return await asyncio.to_thread(_attempt, db, name, password, address, utcnow())


async def open_session(db: Database, account: StaffAccount) -> tuple[StaffContext, str]:
    """A new session (and token) for ``account``; returns its context and the cookie's token."""
    token, csrf = new_token(), new_token()
    async with db.async_session.begin() as session:
        await StaffSessionRepository(session).add(token_hash(token), account.id, csrf, utcnow())
    return StaffContext(account.id, account.name, account.role, token_hash(token), csrf), token


async def session_context(
    db: Database, settings: Settings, token: str | None
) -> StaffContext | None:
    """The staff context of a session token, or ``None`` when it is unknown or has ended."""
    if not token or len(token) > 128:
        return None
    now = utcnow()
    session_id = token_hash(token)
    async with db.async_session.begin() as session:
        found = await StaffSessionRepository(session).with_account(session_id)
        if found is None:
            return None
        staff_session, account = found
        if (
            staff_session.ended_at is not None
            or account.disabled_at is not None
            or now - staff_session.last_seen_at > _timeout(settings)
            or now - staff_session.created_at > SESSION_MAX_AGE
        ):
            return None
        if now - staff_session.last_seen_at > TOUCH_INTERVAL:
            staff_session.last_seen_at = now
        return StaffContext(
            account.id, account.name, account.role, session_id, staff_session.csrf_token
        )


async def log_out(db: Database, context: StaffContext) -> None:
    async with db.async_session.begin() as session:
        await StaffSessionRepository(session).end(context.session_id, utcnow())


# --- FastAPI dependencies ------------------------------------------------------------------


async def current_staff(request: Request) -> StaffContext:
    settings: Settings = request.app.state.settings
    token = request.cookies.get(cookie_policy(settings).session_cookie)
    context = await session_context(request.app.state.db, settings, token)
    if context is None:
        raise LoginRequiredError()
    request.state.staff = context
    return context


async def admin_staff(staff: StaffContext = Depends(current_staff)) -> StaffContext:
    if not staff.is_admin:
        raise AdminOnlyError()
    return staff


async def checked_form(request: Request, staff: StaffContext = Depends(current_staff)) -> FormData:
    """The posted form, once its CSRF token matched the session's; refuses it otherwise."""
    form = await _read_form(request)
    if not same_token(staff.csrf_token, form.get(CSRF_FIELD)):
        raise CsrfError()
    return form


async def _read_form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        # Only the console's own forms are accepted; anything else has no token to check.
        raise CsrfError()
    return await request.form(max_files=0, max_fields=50)


async def login_form(request: Request) -> FormData:
    """The login form, once its token matched the login cookie set with the form."""
    form = await _read_form(request)
    settings: Settings = request.app.state.settings
    if not same_token(
        request.cookies.get(cookie_policy(settings).login_cookie), form.get(CSRF_FIELD)
    ):
        raise CsrfError()
    return form
