"""Signatures of checkpoints and purges: the audit trail's one coupling to signing keys.

``CheckpointVerifier`` checks a compact JWS against the keys it trusts and says which key made
it and when that key was retired; ``CheckpointSigner`` also signs. ``check_checkpoint`` and
``check_purge`` hold the rules a stored checkpoint or purge must meet, for the verifier and the
sealer alike: its signature verifies with a trusted key, covers exactly the stored columns,
was made by the key its ``key_id`` column names, and is dated no later than
``RETIRED_KEY_GRACE`` after that key was retired (a rotated-out key, perhaps rotated because it
leaked, must not sign what came after it).

Which keys are trusted is the point. The verifier must hold against whoever holds the database,
so a key is never trusted merely because it sits in the audited database: anyone who can
rewrite the chain can add a row with a key of their own. Two trust anchors lie outside it:

- ``KeyStoreCheckpointSigner`` (the gateway, ``gateway audit verify``, the console): the key
  store's "audit" keys that ``KeyStore.trusted`` proves this deployment made, because their
  stored private half opens under the master key (Fernet authenticates it: nobody without the
  master key can write such a row) and matches the public half. Every process that verifies
  already has the master key through its settings, as it must to sign. Retirement times come
  from the same proof (the authenticated creation of the next key), not from a column an
  attacker could change.
- ``PinnedKeysVerifier`` (``gateway audit verify --trusted-keys FILE``): a JWK set exported with
  ``gateway keys export --use audit`` and kept elsewhere, to verify a copy of the database
  without the master key.

Why not a pinned file alone: it must be exported again after every rotation and the console
has none to give; the master key already is what makes a key the gateway's own.
``Es256CheckpointSigner`` holds its keys in memory, for tests and tools.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gateway.audit.chain import checkpoint_payload, epoch_microseconds, purge_payload
from gateway.audit.errors import CheckpointSignatureError
from gateway.keys import ActiveKey, KeyStore, KeyUse
from gateway.keys.store import RETIRED_AT_MEMBER
from gateway.settings import Settings

ALGORITHM = "ES256"
# How long the gateway's signer keeps using the key it loaded: after a rotation, a sealer may
# sign with the retired key for that long.
KEY_REFRESH_SECONDS: Final = 60.0
# A signature dated after its key's retirement is refused beyond this: the signer's key cache,
# plus as much again for the clocks of the machine that rotated and of the one that sealed.
RETIRED_KEY_GRACE: Final = dt.timedelta(seconds=2 * KEY_REFRESH_SECONDS)
# What a malformed column raises once read raw (SQLite keeps any value in any column).
MALFORMED: Final = (ValueError, TypeError, OverflowError)


@dataclass(frozen=True)
class VerifiedSignature:
    payload: bytes
    key_id: str
    key_retired_at: dt.datetime | None  # None while the key is current


class CheckpointVerifier(Protocol):
    def verify(self, token: str) -> VerifiedSignature:
        """The payload of ``token`` and its key; raises ``CheckpointSignatureError`` unless a
        trusted key made it."""
        ...


class CheckpointSigner(CheckpointVerifier, Protocol):
    @property
    def key_id(self) -> str: ...

    def sign(self, payload: bytes) -> str:
        """A compact JWS of ``payload`` whose header names the signing key (``kid``)."""
        ...


@dataclass(frozen=True)
class _TrustedKey:
    key: ECKey
    retired_at: dt.datetime | None


def signature_key_id(token: object) -> str:
    """The ``kid`` a compact JWS names: what the ``key_id`` column of its row must hold."""
    if not isinstance(token, str):
        raise CheckpointSignatureError("not a compact JWS")
    try:
        kid = jws.extract_compact(token.encode()).headers().get("kid")
    except (JoseError, ValueError, TypeError) as exc:
        raise CheckpointSignatureError("not a compact JWS") from exc
    if not isinstance(kid, str):
        raise CheckpointSignatureError("the signature names no key")
    return kid


def _verify_with(token: str, trusted: Callable[[str], _TrustedKey | None]) -> VerifiedSignature:
    kid = signature_key_id(token)
    key = trusted(kid)
    if key is None:
        raise CheckpointSignatureError("signed by no trusted audit key")
    try:
        payload = jws.deserialize_compact(token, key.key, algorithms=[ALGORITHM]).payload
    except (JoseError, ValueError, TypeError) as exc:
        raise CheckpointSignatureError("the signature does not verify") from exc
    return VerifiedSignature(payload, kid, key.retired_at)


def _public_key(jwk: Mapping[str, Any], kid: str) -> ECKey:
    """The public P-256 key of a JWK, whatever else it carries (a private ``d`` is dropped)."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError(f"key {kid} is not a P-256 key")
    members: dict[str, Any] = {member: jwk.get(member) for member in ("kty", "crv", "x", "y")}
    try:
        return ECKey.import_key({**members, "kid": kid})
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"key {kid} is not a valid public key") from exc


class Es256CheckpointSigner:
    def __init__(self, private_key: ECKey, *, trusted: Iterable[ECKey] = ()) -> None:
        if private_key.get("crv") != "P-256" or not private_key.is_private:
            raise ValueError("an ES256 checkpoint key is a private P-256 key")
        self._private_key = private_key
        self._key_id = private_key.thumbprint()
        self._trusted = {
            key.thumbprint(): _TrustedKey(
                _public_key(key.as_dict(private=False), key.thumbprint()), None
            )
            for key in (private_key, *trusted)
        }

    @classmethod
    def generate(cls) -> Es256CheckpointSigner:
        return cls(ECKey.generate_key("P-256"))

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK, for the gateway's JWKS."""
        jwk = dict(self._private_key.as_dict(private=False))
        jwk.update({"kid": self._key_id, "use": "sig", "alg": ALGORITHM})
        return jwk

    def sign(self, payload: bytes) -> str:
        header = {"alg": ALGORITHM, "kid": self._key_id}
        return jws.serialize_compact(header, payload, self._private_key, algorithms=[ALGORITHM])

    def verify(self, token: str) -> VerifiedSignature:
        return _verify_with(token, self._trusted.get)


class KeyStoreCheckpointSigner:
    """Signs with the key store's current "audit" key; verifies with the trusted ones.

    The current key is read once per ``refresh_seconds``; reading ``key_id`` loads it (and
    creates the first audit key on first need), which the sealer does before it opens its
    transaction, because SQLite allows one writer at a time. The trusted keys are read again
    when a signature names a key not among them, and at least once per ``refresh_seconds``, so
    that a rotation made meanwhile shows up as the retirement of the key it replaced.
    """

    def __init__(
        self, store: KeyStore, engine: Engine, *, refresh_seconds: float = KEY_REFRESH_SECONDS
    ) -> None:
        self._store = store
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._current: ActiveKey | None = None
        self._loaded_at = float("-inf")
        self._trusted: dict[str, _TrustedKey] = {}
        self._trusted_at = float("-inf")

    def _active(self) -> ActiveKey:
        if self._current is None or time.monotonic() - self._loaded_at >= self._refresh_seconds:
            with Session(self._engine) as session:
                self._current = self._store.current(session, KeyUse.AUDIT)
            self._loaded_at = time.monotonic()
        return self._current

    @property
    def key_id(self) -> str:
        return self._active().kid

    def sign(self, payload: bytes) -> str:
        return self._active().sign_compact(payload)

    def _trusted_key(self, kid: str) -> _TrustedKey | None:
        stale = time.monotonic() - self._trusted_at >= self._refresh_seconds
        if stale or kid not in self._trusted:
            with Session(self._engine) as session:
                keys = self._store.trusted(session, KeyUse.AUDIT)
            self._trusted = {key.kid: _TrustedKey(key.import_key(), key.retired_at) for key in keys}
            self._trusted_at = time.monotonic()
        return self._trusted.get(kid)

    def verify(self, token: str) -> VerifiedSignature:
        return _verify_with(token, self._trusted_key)


class PinnedKeysVerifier:
    """Verifies with public keys pinned outside the database: a JWK set, as
    ``gateway keys export --use audit`` prints it; a key's optional ``retired_at`` (RFC 3339)
    says when it was retired."""

    def __init__(self, document: object) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError('a JWK set is a JSON object with a "keys" array')
        self._trusted: dict[str, _TrustedKey] = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                raise ValueError('every key of the set is a JSON object with a "kid"')
            kid = jwk["kid"]
            self._trusted[kid] = _TrustedKey(_public_key(jwk, kid), _retired_at(jwk, kid))
        if not self._trusted:
            raise ValueError("the JWK set holds no key")

    @classmethod
    def from_file(cls, path: Path) -> PinnedKeysVerifier:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not a readable JSON file") from exc
        return cls(document)

    def verify(self, token: str) -> VerifiedSignature:
        return _verify_with(token, self._trusted.get)


def _retired_at(jwk: Mapping[str, Any], kid: str) -> dt.datetime | None:
    value = jwk.get(RETIRED_AT_MEMBER)
    if value is None:
        return None
    try:
        retired_at = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the {RETIRED_AT_MEMBER} of key {kid} is not a date and time") from exc
    if retired_at.tzinfo is None:
        raise ValueError(f"the {RETIRED_AT_MEMBER} of key {kid} has no time zone")
    return retired_at


def check_signed(
    verifier: CheckpointVerifier,
    token: object,
    expected: bytes,
    key_id: object,
    signed_at_us: int,
    grace: dt.timedelta = RETIRED_KEY_GRACE,
) -> None:
    """Raise ``CheckpointSignatureError`` (its ``code`` names the rule) unless a trusted key
    signed exactly ``expected``, is the key ``key_id`` names, and was not retired more than
    ``grace`` before ``signed_at_us`` (the signed date, epoch microseconds)."""
    if not isinstance(token, str):
        raise CheckpointSignatureError("not a compact JWS")
    verified = verifier.verify(token)
    if verified.payload != expected:
        raise CheckpointSignatureError(
            "the stored row differs from what its signature covers", "mismatch"
        )
    if key_id != verified.key_id:
        raise CheckpointSignatureError(
            f"its key_id column names another key than the one that signed it ({verified.key_id})",
            "key_mismatch",
        )
    retired_at = verified.key_retired_at
    if retired_at is not None and signed_at_us > epoch_microseconds(retired_at + grace):
        raise CheckpointSignatureError(
            f"it is dated after key {verified.key_id} was retired ({retired_at.isoformat()})",
            "retired_key",
        )


def check_checkpoint(
    verifier: CheckpointVerifier, row: Any, grace: dt.timedelta = RETIRED_KEY_GRACE
) -> int:
    """Check a checkpoint row read raw (columns of ``audit_checkpoint``); returns its date in
    epoch microseconds. Raises ``CheckpointSignatureError``, code ``malformed`` for a row whose
    columns do not even have their types."""
    try:
        created_us = epoch_microseconds(row.created_at)
        if not isinstance(row.head_hash, str) or not isinstance(row.record_count, int):
            raise TypeError("head_hash or record_count")
        expected = checkpoint_payload(row.position, row.head_hash, row.record_count, created_us)
    except MALFORMED as exc:
        raise CheckpointSignatureError("its columns are malformed", "malformed") from exc
    check_signed(verifier, row.signature, expected, row.key_id, created_us, grace)
    return created_us


def check_purge(
    verifier: CheckpointVerifier, row: Any, grace: dt.timedelta = RETIRED_KEY_GRACE
) -> None:
    """Check a purge row read raw (columns of ``audit_purge``), like ``check_checkpoint``."""
    try:
        purged_us = epoch_microseconds(row.purged_at)
        if not isinstance(row.head_hash, str) or not isinstance(row.anchor_position, int):
            raise TypeError("head_hash or anchor_position")
        expected = purge_payload(
            row.anchor_position, row.head_hash, row.records_deleted, row.cutoff_at, purged_us
        )
    except MALFORMED as exc:
        raise CheckpointSignatureError("its columns are malformed", "malformed") from exc
    check_signed(verifier, row.signature, expected, row.key_id, purged_us, grace)


def gateway_checkpoint_signer(settings: Settings, engine: Engine) -> KeyStoreCheckpointSigner:
    """The signer the running gateway and its CLI use: the key store's "audit" keys."""
    return KeyStoreCheckpointSigner(KeyStore(settings), engine)
