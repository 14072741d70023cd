"""Staff authentication: argon2 passwords, database-backed sessions, CSRF tokens.

- Passwords are hashed with argon2id (``argon2-cffi`` defaults, RFC 9106's second recommended
  profile); a hash made with weaker parameters is upgraded at the next successful login.
- Five wrong passwords in a row lock the account for fifteen minutes. Unknown names cost the
  same argon2 work as known ones, so timing does not tell which names exist.
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
from gateway.console.repository import StaffRepository, StaffSessionRepository
from gateway.database import Database, utcnow
from gateway.errors import ForbiddenError, UnauthorizedError
from gateway.settings import Settings

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024  # argon2 cost does not depend on it, but parsing does
NAME_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_FAILED_LOGINS: Final = 5
LOCKOUT: Final = dt.timedelta(minutes=15)
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
    """A login attempt checked: the ``account`` when the password matched, else a code."""

    account: StaffAccount | None = None
    failure: str | None = None


def _timeout(settings: Settings) -> dt.timedelta:
    return dt.timedelta(minutes=settings.console_session_timeout_minutes)


def _verify_and_record(
    db: Database, name: str, password: str, now: dt.datetime
) -> tuple[StaffAccount | None, str | None, bool]:
    """(account, failure code, rehash needed); runs in a worker thread (argon2 is CPU work)."""
    with db.sync_session.begin() as session:
        staff = StaffRepository(session)
        account = staff.by_name(name) if NAME_PATTERN.fullmatch(name) else None
        if account is None:
            verify_password(_decoy_hash(), password)
            return None, "login.unknown", False
        if account.disabled_at is not None:
            verify_password(_decoy_hash(), password)
            return None, "login.disabled", False
        if account.locked_until is not None and account.locked_until > now:
            verify_password(_decoy_hash(), password)
            return None, "login.locked", False
        if not verify_password(account.password_hash, password):
            account.failed_logins += 1
            if account.failed_logins >= MAX_FAILED_LOGINS:
                account.locked_until = now + LOCKOUT
                account.failed_logins = 0
            return None, "login.bad_password", False
        rehash = needs_rehash(account.password_hash)
        if rehash:
            account.password_hash = _hasher.hash(password)
        account.failed_logins = 0
        account.locked_until = None
        account.last_login_at = now
        session.flush()
        session.expunge(account)
        return account, None, rehash


async def check_login(db: Database, name: str, password: str) -> LoginCheck:
    """Check a name and password (counting failures and locking as needed); opens nothing."""
    if len(password) > MAX_PASSWORD_LENGTH or len(name) > 256:
        return LoginCheck(failure="login.invalid")
    account, failure, _ = await asyncio.to_thread(_verify_and_record, db, name, password, utcnow())
    return LoginCheck(account=account, failure=failure)


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
