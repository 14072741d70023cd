"""Subject pseudonyms: a keyed HMAC-SHA256 of the normalised identifier, never the identifier.

``pseudonym = hex(HMAC-SHA256(key, kind || ":" || normalised identifier))``. The kind is part of
the input so a NIR and a SIREN made of the same characters can never collide, and a NIR and
the SIREN of one person's business stay two subjects unless the pipeline records both. The
identifier is normalised first (``gateway.identifiers``), so the same person always gets the
same pseudonym whatever spacing a partner used.

Keys live in ``audit_pseudonym_key``, each secret encrypted with the master key: a database
dump alone cannot test a guessed NIR against the trail. One key is active and used for new
records; rotation retires it (``gateway audit rotate-pseudonym-key``) and every record keeps the
id of the key that made its pseudonym, so a person's right of access is answered by computing
their pseudonym under every key. Processes cache the keys and re-read them every
``refresh_seconds``, so a rotation reaches every process within that delay; a lookup that
finds nothing may ask for a fresher read sooner (:meth:`Pseudonymiser.reload_if_older_than`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.audit.errors import AuditUnavailableError
from gateway.audit.models import PseudonymKey
from gateway.audit.schemas import AuditSubject, SubjectKind
from gateway.database import Database, utcnow
from gateway.identifiers import parse_nir, parse_siren
from gateway.secrets import decrypt, encrypt
from gateway.settings import Settings

log = structlog.get_logger(__name__)

SECRET_BYTES = 32


def normalise(kind: SubjectKind, identifier: str) -> str:
    """The canonical form of an identifier; raises ``InvalidIdentifierError`` when invalid."""
    if kind == "nir":
        return parse_nir(identifier)
    if kind == "siren":
        return parse_siren(identifier)
    raise ValueError(f"unknown subject kind {kind!r}")


def hmac_pseudonym(secret: bytes, kind: SubjectKind, normalised: str) -> str:
    return hmac.new(secret, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Key:
    key_id: str
    secret: bytes
    active: bool


def _new_key_id(now: dt.datetime) -> str:
    return f"pk-{now:%Y%m%d}-{secrets.token_hex(4)}"


def _insert_active_key(session: Session, settings: Settings) -> str:
    now = utcnow()
    key_id = _new_key_id(now)
    session.execute(
        insert(PseudonymKey).values(
            key_id=key_id,
            secret_ciphertext=encrypt(settings, secrets.token_bytes(SECRET_BYTES)),
            created_at=now,
            active=True,
        )
    )
    return key_id


class Pseudonymiser:
    """Turns identifiers into pseudonyms with the active key, and lists them under every key."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._settings = settings
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._active: _Key | None = None
        self._keys: tuple[_Key, ...] = ()
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[_Key] | None = None

    # --- keys ------------------------------------------------------------------------------

    def _read_keys(self) -> list[_Key]:
        with self._db.sync_session() as session:
            rows = session.execute(
                select(
                    PseudonymKey.key_id, PseudonymKey.secret_ciphertext, PseudonymKey.active
                ).order_by(PseudonymKey.created_at, PseudonymKey.key_id)
            ).all()
        return [
            _Key(key_id, decrypt(self._settings, cipher), active) for key_id, cipher, active in rows
        ]

    def _load(self) -> tuple[_Key, tuple[_Key, ...]]:
        """The active key (made if there is none yet) and every key."""
        for attempt in range(2):
            keys = self._read_keys()
            active = [key for key in keys if key.active]
            if active:
                return active[0], tuple(keys)
            try:
                with self._db.sync_session.begin() as session:
                    _insert_active_key(session, self._settings)
            except IntegrityError:
                # Another process created the first key at the same moment: use theirs.
                if attempt:
                    raise
        raise RuntimeError("no active pseudonym key after creating one")

    def active_key_sync(self) -> tuple[str, bytes]:
        if self._active is None or self._clock() - self._loaded_at >= self._refresh_seconds:
            self._active, self._keys = self._load()
            self._loaded_at = self._clock()
        return self._active.key_id, self._active.secret

    async def _active_key(self) -> _Key:
        active = self._active
        if active is None:
            return await self._reload(self._refresh_seconds)
        if self._clock() - self._loaded_at >= self._refresh_seconds and (
            self._refresh is None or self._refresh.done()
        ):
            # The key in hand stays valid while a newer one is looked for: requests never wait
            # for the periodic reload (they all used to, once per interval).
            self._refresh = asyncio.create_task(self._reload(self._refresh_seconds))
        return active

    async def reload_if_older_than(self, seconds: float) -> bool:
        """Re-read the keys unless they were read within ``seconds``; True if they were."""
        if self._active is not None and self._clock() - self._loaded_at < seconds:
            return False
        await self._reload(seconds)
        return True

    async def _reload(self, max_age: float) -> _Key:
        async with self._lock:
            active = self._active
            if active is not None and self._clock() - self._loaded_at < max_age:
                return active
            try:
                loaded, keys = await asyncio.to_thread(self._load)
            except Exception as exc:
                if active is None:
                    raise AuditUnavailableError("no pseudonym key could be loaded") from exc
                # A key read a minute ago is still a valid key: keep serving with it.
                log.warning("pseudonym_key_refresh_failed", error_type=type(exc).__name__)
                self._loaded_at = self._clock()
                return active
            self._active, self._keys = loaded, keys
            self._loaded_at = self._clock()
            return loaded

    # --- pseudonyms ------------------------------------------------------------------------

    async def pseudonym(self, kind: SubjectKind, identifier: str) -> tuple[str, str]:
        """``(key_id, pseudonym)`` of an identifier under the active key.

        Raises ``InvalidIdentifierError`` for an invalid identifier and
        ``AuditUnavailableError`` when no key can be read (the request must then fail closed).
        """
        normalised = normalise(kind, identifier)
        key = await self._active_key()
        return key.key_id, hmac_pseudonym(key.secret, kind, normalised)

    async def known_pseudonyms(self, kind: SubjectKind, identifier: str) -> list[tuple[str, str]]:
        """``(key_id, pseudonym)`` under every key this process holds, retired ones included.

        The request path's variant of :meth:`all_pseudonyms`: no database read, the keys as
        refreshed with the active key. A key made since then in another process is missing
        until the next refresh or :meth:`reload_if_older_than`.
        """
        normalised = normalise(kind, identifier)
        await self._active_key()
        return [(key.key_id, hmac_pseudonym(key.secret, kind, normalised)) for key in self._keys]

    async def subject(self, kind: SubjectKind, identifier: str) -> AuditSubject:
        """The audit subject of an identifier, ready for ``AuditEntry.subjects``."""
        key_id, value = await self.pseudonym(kind, identifier)
        return AuditSubject(kind, value, key_id)

    def all_pseudonyms(self, kind: SubjectKind, identifier: str) -> list[tuple[str, str]]:
        """``(key_id, pseudonym)`` of an identifier under every key, retired ones included."""
        normalised = normalise(kind, identifier)
        return [
            (key.key_id, hmac_pseudonym(key.secret, kind, normalised)) for key in self._read_keys()
        ]

    def rotate(self) -> str:
        """Retire the active key and create a new one; returns the new key id."""
        with self._db.sync_session.begin() as session:
            session.execute(
                update(PseudonymKey).where(PseudonymKey.active.is_(True)).values(active=False)
            )
            key_id = _insert_active_key(session, self._settings)
        self._active = None
        log.info("pseudonym_key_rotated", key_id=key_id)
        return key_id
