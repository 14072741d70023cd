"""Signed CFP attestations: a training fund can verify and archive them without the gateway.

Every attestation the CFP connector returns also travels as a compact JWS (RFC 7515) whose
payload holds the same facts. The gateway signs it with an attestation key whose public half
is published in ``/.well-known/jwks.json``; a fund checks the signature with that key (found
by the ``kid`` header) and keeps the token as its proof, long after the HTTP answer is gone.

Claims (JSON): ``iss`` (the gateway), ``iat`` (seconds since the epoch), ``jti`` (unique id of
this attestation), ``sub`` (SIREN), ``year``, ``fund``, ``base``, ``rate`` (percent),
``amount_due``, ``amount_paid`` (decimal strings, never floats: amounts must survive a round
trip exactly), ``payment_date`` (``YYYY-MM-DD`` or null) and ``fully_paid``.

Connectors never hold keys: the gateway hands a signer to the connector as
``ctx.services["attestation_signer"]``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol, cast

from connectors.kit import UpstreamUnavailable

SIGNER_SERVICE = "attestation_signer"
ATTESTATION_TYP = "cfp-attestation+jwt"


class AttestationSigner(Protocol):
    """Signs attestation claims with a gateway attestation key.

    ``sign`` returns a compact JWS whose protected header carries ``alg`` (ES256), ``kid`` (the
    key's id in the gateway's JWKS) and ``typ`` (:data:`ATTESTATION_TYP`), over the claims
    serialised as JSON. It is called once per attestation, up to 10,000 times per request, so
    it must not do I/O.
    """

    @property
    def issuer(self) -> str:
        """The gateway's public base URL, written in each attestation's ``iss``."""
        ...

    def sign(self, claims: dict[str, Any]) -> str: ...


def signer_from(services: Mapping[str, Any]) -> AttestationSigner:
    """The gateway's signer; without one no attestation can be issued (a deployment fault)."""
    signer = services.get(SIGNER_SERVICE)
    # ``callable`` rather than an isinstance check against the runtime protocol, which
    # inspects the protocol's members on every call: this runs for every attestation request.
    if not callable(getattr(signer, "sign", None)):
        raise UpstreamUnavailable(
            "attestation.signer_unavailable", "Attestations cannot be signed right now."
        )
    return cast(AttestationSigner, signer)


def attestation_claims(
    *,
    issuer: str,
    issued_at: dt.datetime,
    siren: str,
    year: int,
    fund: str,
    base: Decimal,
    rate: Decimal,
    amount_due: Decimal,
    amount_paid: Decimal,
    payment_date: dt.date | None,
    fully_paid: bool,
) -> dict[str, Any]:
    """The payload of one attestation, ready to be signed."""
    return {
        "iss": issuer,
        "iat": int(issued_at.timestamp()),
        "jti": uuid.uuid4().hex,
        "sub": siren,
        "year": year,
        "fund": fund,
        "base": str(base),
        "rate": str(rate),
        "amount_due": str(amount_due),
        "amount_paid": str(amount_paid),
        "payment_date": payment_date.isoformat() if payment_date else None,
        "fully_paid": fully_paid,
    }
