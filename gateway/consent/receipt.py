"""Consent receipts: what the partner hands the person, signed by the gateway.

The claims follow the fields of a consent record in ISO/IEC TS 27560 (after the Kantara
Consent Receipt): controllers, purpose, data categories, legal basis, time, expiry. The person
is named by pseudonym only: the receipt travels outside the gateway.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from gateway.keys.models import KeyUse
from gateway.keys.store import KeyStore
from gateway.settings import Settings

RECEIPT_TYPE = "consent-receipt+jwt"
CONTROLLER = {
    "name": "URSSAF Caisse nationale",
    "address": "36 rue de Valmy, 93108 Montreuil Cedex, France",
    "role": "controller",
}
DATA_CATEGORIES = {
    "turnover:read": ["declared turnover of a micro-entrepreneur, per period and activity"],
    "status:read": ["self-employed affiliation, regime, category and radiation"],
    "status:feed": ["changes of self-employed affiliation, regime and radiation"],
    "cfp:read": ["training contribution (CFP) due and paid"],
    "acre:read": ["ACRE exemption decision and its evidence"],
}


def receipt_claims(
    *,
    settings: Settings,
    consent_id: str,
    partner_name: str,
    subject_reference: str,
    scopes: list[str],
    purpose: str,
    legal_basis: str,
    evidence: str,
    granted_at: dt.datetime,
    expires_at: dt.datetime,
) -> dict[str, Any]:
    return {
        "iss": settings.issuer,
        "jti": consent_id,
        "iat": int(granted_at.timestamp()),
        "schema": "ISO/IEC TS 27560:2023 consent record",
        "record_id": consent_id,
        "language": "fr",
        "jurisdiction": "FR",
        "pii_principal": subject_reference,
        "controllers": [CONTROLLER, {"name": partner_name, "role": "recipient"}],
        "processing": [
            {
                "purpose": purpose,
                "service": scope,
                "data_categories": DATA_CATEGORIES.get(scope, []),
                "legal_basis": legal_basis,
                "consent_type": "explicit",
            }
            for scope in scopes
        ],
        "collection_method": evidence,
        "consent_given_at": granted_at.isoformat(),
        "expires_at": expires_at.isoformat(),
        "withdrawal": "POST /api/v1/consents/{id}/revoke by the recipient, on the person's request",
    }


def sign_receipt(store: KeyStore, session: Any, claims: dict[str, Any]) -> str:
    key = store.current(session, KeyUse.CONSENT)
    payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
    return key.sign_compact(payload, {"typ": RECEIPT_TYPE})
