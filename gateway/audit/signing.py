"""Signatures of checkpoints and purges: the audit trail's one coupling to signing keys.

``CheckpointSigner`` is all the audit package needs: sign a payload into a compact JWS, and
verify one back to its payload, whichever trusted key signed it (found by the JWS ``kid``), so
checkpoints signed before a key rotation still verify. The gateway uses
``KeyStoreCheckpointSigner``: the key store's keys of use "audit", encrypted at rest and
published in the JWKS, so anyone holding the JWKS can check a checkpoint.
``Es256CheckpointSigner`` holds its keys in memory, for tests and tools.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gateway.audit.errors import CheckpointSignatureError
from gateway.keys import ActiveKey, KeyStore, KeyUse
from gateway.settings import Settings

ALGORITHM = "ES256"


class CheckpointSigner(Protocol):
    @property
    def key_id(self) -> str: ...

    def sign(self, payload: bytes) -> str:
        """A compact JWS of ``payload`` whose header names the signing key (``kid``)."""
        ...

    def verify(self, token: str) -> bytes:
        """The payload of ``token``; raises ``CheckpointSignatureError`` unless it verifies."""
        ...


class Es256CheckpointSigner:
    def __init__(self, private_key: ECKey, *, trusted: Iterable[ECKey] = ()) -> None:
        if private_key.get("crv") != "P-256" or not private_key.is_private:
            raise ValueError("an ES256 checkpoint key is a private P-256 key")
        self._private_key = private_key
        self._key_id = private_key.thumbprint()
        public = [ECKey.import_key(private_key.as_dict(private=False), {"kid": self._key_id})]
        for key in trusted:
            public.append(ECKey.import_key(key.as_dict(private=False), {"kid": key.thumbprint()}))
        self._trusted = KeySet(public)  # type: ignore[arg-type]

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

    def verify(self, token: str) -> bytes:
        try:
            signature = jws.deserialize_compact(token, self._trusted, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError) as exc:
            raise CheckpointSignatureError("the signature does not verify") from exc
        return signature.payload


class KeyStoreCheckpointSigner:
    """Signs with the key store's current "audit" key; verifies with every published one.

    The current key is read once per ``refresh_seconds``; reading ``key_id`` loads it (and
    creates the first audit key on first need), which the sealer does before it opens its
    transaction, because SQLite allows one writer at a time.
    """

    def __init__(self, store: KeyStore, engine: Engine, *, refresh_seconds: float = 60.0) -> None:
        self._store = store
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._current: ActiveKey | None = None
        self._loaded_at = float("-inf")
        self._published: dict[str, ECKey] = {}

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

    def verify(self, token: str) -> bytes:
        try:
            kid = str(jws.extract_compact(token.encode()).headers().get("kid"))
        except (JoseError, ValueError, TypeError) as exc:
            raise CheckpointSignatureError("not a compact JWS") from exc
        if kid not in self._published:
            # Keys are few and audit keys stay published for good: reload only on a new kid.
            with Session(self._engine) as session:
                keys = self._store.published(session, KeyUse.AUDIT)
            self._published = {key.kid: key.import_key() for key in keys}
        key = self._published.get(kid)
        if key is None:
            raise CheckpointSignatureError("signed by no published audit key")
        try:
            return jws.deserialize_compact(token, key, algorithms=[ALGORITHM]).payload
        except (JoseError, ValueError, TypeError) as exc:
            raise CheckpointSignatureError("the signature does not verify") from exc


def gateway_checkpoint_signer(settings: Settings, engine: Engine) -> KeyStoreCheckpointSigner:
    """The signer the running gateway and its CLI use: the key store's "audit" keys."""
    return KeyStoreCheckpointSigner(KeyStore(settings), engine)
