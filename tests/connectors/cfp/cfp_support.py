"""Test support for the CFP connector: an ES256 attestation signer and shared constants."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey

from connectors.cfp.attestation import ATTESTATION_TYP
from connectors.kit import ConnectorContext

TODAY = dt.date(2026, 7, 15)
ISSUER = "https://gateway.example.test"

Connect = Callable[..., AbstractAsyncContextManager[ConnectorContext]]


class Es256Signer:
    """Stands in for the gateway's attestation key: a fresh P-256 key per test."""

    def __init__(self, issuer: str = ISSUER, kid: str = "attestation-test-1") -> None:
        self.issuer = issuer
        self.kid = kid
        self.key = ECKey.generate_key("P-256", private=True)
        self.signed = 0
        self.seconds = 0.0

    def sign(self, claims: dict[str, Any]) -> str:
        started = time.perf_counter()
        header = {"alg": "ES256", "kid": self.kid, "typ": ATTESTATION_TYP}
        payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
        token = jws.serialize_compact(header, payload, self.key, algorithms=["ES256"])
        self.signed += 1
        self.seconds += time.perf_counter() - started
        return token

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK as /.well-known/jwks.json would publish it."""
        return {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": "ES256"}
