"""The gateway's signing keys: creation, rotation, use and publication.

Each use (:class:`~gateway.keys.models.KeyUse`) has one current key, an ES256 (P-256) pair
whose private half is stored encrypted with the deployment's master key
(:mod:`gateway.secrets`); the database alone signs nothing.

Publication (the JWK set at ``/.well-known/jwks.json``) follows what the signatures need:

* a ``token`` key is published while current, then until the last access token it signed has
  expired (plus the verification leeway): :meth:`KeyStore.note_signed` records that bound in
  the database before a token leaves, so every process, and the next rotation, knows it;
* ``audit``, ``attestation`` and ``consent`` keys sign documents that must stay verifiable for
  as long as they are kept, so their public halves stay published for good.

Which keys to *trust* is another question than which to publish: whoever can write the
``signing_key`` table can add a row with a public key of their own, or change the public half of
a real one. :meth:`KeyStore.trusted` therefore keeps only the keys the deployment provably made:
the stored private half opens under the master key (Fernet authenticates it, so nobody without
the master key can make such a row) and is the private half of the stored public key, whose kid
is its RFC 7638 thumbprint. The dates come from the same place: Fernet stamps, under its
authentication, when it encrypted, so a key's creation time is known without trusting the
table, and a key counts as retired no later than the creation of the next key of its use
(rotation makes the new key right after retiring the old one), whatever ``retired_at`` says.
The audit trail's verifier relies on this, since it must hold against whoever holds the
database (see :mod:`gateway.audit.signing`).

Writes that must outlive the caller's transaction (creating the first key of a use, raising
the signed-expiry bound) run in their own short transaction on the same engine; call them
before the caller's session writes anything, since SQLite has a single writer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import Engine, Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.database import utcnow
from gateway.keys.models import KeyUse, SigningKey
from gateway.secrets import cipher, decrypt, encrypt
from gateway.settings import Settings

ALGORITHM = "ES256"
CURVE = "P-256"
# Signatures of these uses outlive any token: their keys are never withdrawn from the JWK set.
PERMANENT_USES: frozenset[KeyUse] = frozenset({KeyUse.AUDIT, KeyUse.ATTESTATION, KeyUse.CONSENT})
# Raising the signed-expiry bound a minute further than needed spares a write per token.
_NOTE_SLACK = dt.timedelta(seconds=60)
# A member of the JWKs that ``pinned_jwks`` writes: when the key was retired (RFC 3339, UTC).
# RFC 7517 has no such member; implementations ignore members they do not know.
RETIRED_AT_MEMBER = "retired_at"
# Fernet's time stamps are whole seconds.
_STAMP = dt.timedelta(seconds=1)
# The members of a P-256 public JWK that define the key (RFC 7638 thumbprint members).
_PUBLIC_MEMBERS = ("crv", "kty", "x", "y")


class KeyNotFoundError(LookupError):
    """No published key of the expected use has this kid."""


class SignatureInvalidError(ValueError):
    """A signature does not verify with the key its header names."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """The public half of a key, as published."""

    kid: str
    use: KeyUse
    alg: str
    jwk: dict[str, Any]
    created_at: dt.datetime
    retired_at: dt.datetime | None

    def as_jwk(self) -> dict[str, Any]:
        return {**self.jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def import_key(self) -> ECKey:
        return ECKey.import_key(self.as_jwk())


@dataclass(frozen=True, slots=True)
class ActiveKey:
    """The current key of a use, private half loaded, ready to sign."""

    id: int
    kid: str
    use: KeyUse
    alg: str
    private_key: ECKey

    def sign_compact(self, payload: bytes, header: dict[str, Any] | None = None) -> str:
        """A compact JWS of ``payload``; ``kid`` and ``alg`` are always this key's."""
        protected = {**(header or {}), "alg": self.alg, "kid": self.kid}
        return jws.serialize_compact(protected, payload, self.private_key, algorithms=[self.alg])


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as operators see it (``gateway keys list``)."""

    kid: str
    use: KeyUse
    alg: str
    created_at: dt.datetime
    retired_at: dt.datetime | None
    published: bool


class KeyStore:
    """Signing keys of one deployment; safe to share between threads of one process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._leeway = dt.timedelta(seconds=settings.token_leeway_seconds)
        self._private_keys: dict[str, ECKey] = {}
        self._noted_until: dict[int, dt.datetime] = {}
        # (kid, stored ciphertext, stored public JWK) -> (public JWK, creation time) of keys
        # proven authentic, or None: proving it costs a decryption, and rows never change.
        self._authentic: dict[tuple[str, str, str], tuple[dict[str, Any], dt.datetime] | None] = {}
        self._lock = threading.Lock()

    # -- signing ---------------------------------------------------------------------------

    def current(self, session: Session, use: KeyUse) -> ActiveKey:
        """The current key of ``use``, created on first need."""
        row = session.scalar(_current_query(use))
        if row is None:
            return self._create_first(_engine_of(session), use)
        return self._active(row)

    def note_signed(self, session: Session, key: ActiveKey, expires_at: dt.datetime) -> None:
        """Record, before handing it out, that ``key`` signed something valid until ``expires_at``.

        Committed on its own: the bound must hold even if the caller's transaction fails later,
        since the signature may already be out.
        """
        with self._lock:
            known = self._noted_until.get(key.id)
        if known is not None and known >= expires_at:
            return
        bound = expires_at + _NOTE_SLACK
        with _engine_of(session).begin() as connection:
            connection.execute(
                update(SigningKey)
                .where(
                    SigningKey.id == key.id,
                    or_(
                        SigningKey.last_signed_expiry_at.is_(None),
                        SigningKey.last_signed_expiry_at < bound,
                    ),
                )
                .values(last_signed_expiry_at=bound)
            )
        with self._lock:
            self._noted_until[key.id] = bound

    def rotate(self, session: Session, use: KeyUse) -> PublicKey:
        """Retire the current key of ``use`` (if any) and make a new one current.

        The caller commits. A concurrent rotation of the same use makes the commit fail on the
        one-current-key index rather than leave two current keys.
        """
        now = utcnow()
        session.execute(
            update(SigningKey)
            .where(SigningKey.use == use.value, SigningKey.retired_at.is_(None))
            .values(retired_at=now)
        )
        row = self._new_row(use)
        session.add(row)
        session.flush()
        return _public(row)

    # -- publication and verification ------------------------------------------------------

    def published(
        self, session: Session, use: KeyUse | None = None, now: dt.datetime | None = None
    ) -> list[PublicKey]:
        """The keys to publish and to check signatures with: only those this deployment
        provably made, so that a row planted in the table (with nothing but write access to
        the database) can neither mint access tokens nor vouch for attestations."""
        rows = session.scalars(self._published_query(use, now))
        return [_public(row) for row in rows if self._prove(row) is not None]

    async def published_async(
        self, session: AsyncSession, use: KeyUse | None = None, now: dt.datetime | None = None
    ) -> list[PublicKey]:
        """:meth:`published`, on an async session."""
        rows = await session.scalars(self._published_query(use, now))
        return [_public(row) for row in rows if self._prove(row) is not None]

    def trusted(self, session: Session, use: KeyUse) -> list[PublicKey]:
        """The published keys of ``use`` this deployment provably made, newest first.

        A row whose private half does not open under the master key, or is not the private
        half of its public key, is left out. ``created_at`` is the authenticated time the key
        was made; ``retired_at`` the earlier of the stored retirement and the authenticated
        creation of the next key of the same use (see the module docstring).
        """
        proven: list[tuple[SigningKey, dict[str, Any], dt.datetime]] = []
        for row in session.scalars(self._published_query(use, None)):
            authentic = self._prove(row)
            if authentic is not None:
                proven.append((row, *authentic))
        # Oldest first; Fernet stamps whole seconds, so keys made within one second keep the
        # order of their ids (a rotation inserts the new row after the old), and a successor
        # stamped at second S was made before S + 1.
        proven.sort(key=lambda item: (item[2], item[0].id))
        keys = []
        for index, (row, jwk, created_at) in enumerate(proven):
            successor = proven[index + 1][2] + _STAMP if index + 1 < len(proven) else None
            ends = [end for end in (row.retired_at, successor) if end is not None]
            keys.append(
                dataclasses.replace(
                    _public(row), jwk=jwk, created_at=created_at, retired_at=min(ends, default=None)
                )
            )
        keys.reverse()
        return keys

    @staticmethod
    def jwks(keys: Iterable[PublicKey]) -> dict[str, list[dict[str, Any]]]:
        """A JWK set document (RFC 7517) of public keys only."""
        return {"keys": [key.as_jwk() for key in keys]}

    def verify_compact(
        self, session: Session, token: str, use: KeyUse
    ) -> tuple[dict[str, Any], bytes]:
        """Verify a compact JWS made by :meth:`ActiveKey.sign_compact` with a key of ``use``.

        Only keys of that use are tried, so a signature made for one purpose never passes for
        another. Returns the protected header and the payload.
        """
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError) as exc:
            raise SignatureInvalidError("not a compact JWS") from exc
        keys = {key.kid: key for key in self.published(session, use)}
        key = keys.get(str(header.get("kid")))
        if key is None or header.get("alg") != key.alg:
            raise KeyNotFoundError("no published key of this use matches the signature")
        try:
            verified = jws.deserialize_compact(token, key.import_key(), algorithms=[key.alg])
        except JoseError as exc:
            raise SignatureInvalidError("the signature does not verify") from exc
        return verified.headers(), verified.payload

    def list_keys(self, session: Session, now: dt.datetime | None = None) -> list[KeyInfo]:
        published = {key.kid for key in self.published(session, now=now)}
        rows = session.scalars(select(SigningKey).order_by(SigningKey.use, SigningKey.id.desc()))
        return [
            KeyInfo(
                kid=row.kid,
                use=KeyUse(row.use),
                alg=row.alg,
                created_at=row.created_at,
                retired_at=row.retired_at,
                published=row.kid in published,
            )
            for row in rows
        ]

    # -- internals -------------------------------------------------------------------------

    def _published_query(self, use: KeyUse | None, now: dt.datetime | None) -> Select[SigningKey]:
        horizon = (now or utcnow()) - self._leeway
        query = (
            select(SigningKey)
            .where(
                or_(
                    SigningKey.use.in_([permanent.value for permanent in PERMANENT_USES]),
                    SigningKey.retired_at.is_(None),
                    SigningKey.last_signed_expiry_at > horizon,
                )
            )
            .order_by(SigningKey.id.desc())
        )
        if use is not None:
            query = query.where(SigningKey.use == use.value)
        return query

    def _new_row(self, use: KeyUse) -> SigningKey:
        key = ECKey.generate_key(CURVE, private=True, auto_kid=False)
        kid = key.thumbprint()
        return SigningKey(
            kid=kid,
            use=use.value,
            alg=ALGORITHM,
            public_jwk=dict(key.as_dict(private=False)),
            private_key_encrypted=encrypt(self._settings, key.as_pem(private=True)),
        )

    def _create_first(self, engine: Engine, use: KeyUse) -> ActiveKey:
        try:
            with Session(engine, expire_on_commit=False) as own, own.begin():
                row = self._new_row(use)
                own.add(row)
            return self._active(row)
        except IntegrityError:
            # Another process created it between our read and our insert: use theirs.
            with Session(engine) as own:
                existing = own.scalar(_current_query(use))
                if existing is None:
                    raise
                return self._active(existing)

    def _prove(self, row: SigningKey) -> tuple[dict[str, Any], dt.datetime] | None:
        """(public JWK, creation time) of a row made with this deployment's master key."""
        stored = row.public_jwk if isinstance(row.public_jwk, dict) else {}
        public = {member: stored.get(member) for member in _PUBLIC_MEMBERS}
        cache_key = (row.kid, row.private_key_encrypted, repr(sorted(public.items())))
        with self._lock:
            if cache_key in self._authentic:
                return self._authentic[cache_key]
        proven: tuple[dict[str, Any], dt.datetime] | None = None
        try:
            token = row.private_key_encrypted.encode()
            fernet = cipher(self._settings)
            # Both checks verify the token's HMAC: neither its content nor its time is forged.
            private = ECKey.import_key(fernet.decrypt(token))
            stamped = dt.datetime.fromtimestamp(fernet.extract_timestamp(token), dt.UTC)
        except (InvalidToken, JoseError, ValueError, TypeError, AttributeError):
            private, stamped = None, None
        if private is not None and stamped is not None and row.alg == ALGORITHM:
            derived = {
                member: private.as_dict(private=False).get(member) for member in _PUBLIC_MEMBERS
            }
            if derived == public and derived["crv"] == CURVE and private.thumbprint() == row.kid:
                proven = (derived, stamped)
        with self._lock:
            self._authentic[cache_key] = proven
        return proven

    def _active(self, row: SigningKey) -> ActiveKey:
        with self._lock:
            private = self._private_keys.get(row.kid)
        if private is None:
            pem = decrypt(self._settings, row.private_key_encrypted)
            private = ECKey.import_key(pem, {"kid": row.kid, "alg": row.alg, "use": "sig"})
            with self._lock:
                self._private_keys[row.kid] = private
        return ActiveKey(
            id=row.id, kid=row.kid, use=KeyUse(row.use), alg=row.alg, private_key=private
        )


def pinned_jwks(keys: Iterable[PublicKey]) -> dict[str, list[dict[str, Any]]]:
    """A JWK set of ``keys`` to keep outside the database, each with its retirement if any."""
    documents = []
    for key in keys:
        document = key.as_jwk()
        if key.retired_at is not None:
            document[RETIRED_AT_MEMBER] = key.retired_at.astimezone(dt.UTC).isoformat()
        documents.append(document)
    return {"keys": documents}


def _current_query(use: KeyUse) -> Select[SigningKey]:
    return select(SigningKey).where(SigningKey.use == use.value, SigningKey.retired_at.is_(None))


def _public(row: SigningKey) -> PublicKey:
    return PublicKey(
        kid=row.kid,
        use=KeyUse(row.use),
        alg=row.alg,
        jwk=dict(row.public_jwk),
        created_at=row.created_at,
        retired_at=row.retired_at,
    )


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine
