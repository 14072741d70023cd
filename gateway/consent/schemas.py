"""Request and response bodies of the consent API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.identifiers import parse_nir, parse_siren

ConsentState = Literal["active", "revoked", "expired"]
SCOPES_UNDER_CONSENT = ("turnover:read", "status:read", "status:feed", "cfp:read", "acre:read")


class ConsentSubjectIn(BaseModel):
    """The person, by NIR or by SIREN (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    nir: str | None = Field(default=None, description="The person's NIR (15 characters).")
    siren: str | None = Field(default=None, description="The SIREN of the person's business.")

    @field_validator("nir")
    @classmethod
    def _nir(cls, value: str | None) -> str | None:
        return None if value is None else parse_nir(value)

    @field_validator("siren")
    @classmethod
    def _siren(cls, value: str | None) -> str | None:
        return None if value is None else parse_siren(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> ConsentSubjectIn:
        if (self.nir is None) == (self.siren is None):
            raise ValueError("give exactly one of nir or siren")
        return self


class ConsentIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject": {"siren": "732829320"},
                    "scopes": ["turnover:read"],
                    "purpose": "rsa-instruction",
                    "evidence": "Signed form, case file 2026-000123, collected in person",
                    "expires_at": "2027-06-30T00:00:00Z",
                }
            ]
        },
    )

    subject: ConsentSubjectIn
    scopes: list[str] = Field(min_length=1, max_length=5, description="Data scopes consented to.")
    purpose: str = Field(min_length=1, max_length=64, description="The purpose code consented to.")
    evidence: str = Field(
        min_length=1,
        max_length=500,
        description="How the consent was collected, and where its proof is.",
    )
    expires_at: dt.datetime = Field(description="When the consent ends (ISO 8601, with offset).")

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCOPES_UNDER_CONSENT))
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        return sorted(set(value))

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("expires_at needs a time zone offset")
        return value.astimezone(dt.UTC)


class ConsentRevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500, description="Why it was withdrawn.")


class ConsentEventOut(BaseModel):
    event: Literal["granted", "revoked", "expired"] = Field(description="What happened.")
    occurred_at: dt.datetime = Field(description="When (UTC).")


class ConsentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f0c2a5e-8d1b-4c7a-9e62-0b7d5f1a2c34",
                    "state": "active",
                    "scopes": ["turnover:read"],
                    "purpose": "rsa-instruction",
                    "legal_basis": "Code de l'action sociale et des familles, art. L. 262-40",
                    "granted_at": "2026-11-27T10:15:00Z",
                    "expires_at": "2027-06-30T00:00:00Z",
                    "events": [{"event": "granted", "occurred_at": "2026-11-27T10:15:00Z"}],
                    "receipt": "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiIuLi4ifQ.c2ln",
                }
            ]
        }
    )

    id: str = Field(description="The consent's identifier.")
    state: ConsentState = Field(description="Derived from the ledger and the expiry.")
    scopes: list[str] = Field(description="Data scopes the person consented to.")
    purpose: str = Field(description="The purpose code consented to.")
    legal_basis: str = Field(description="The habilitations' legal basis this consent serves.")
    granted_at: dt.datetime = Field(description="When the consent was recorded (UTC).")
    expires_at: dt.datetime = Field(description="When it ends (UTC).")
    events: list[ConsentEventOut] = Field(description="The consent's ledger, oldest first.")
    receipt: str = Field(
        description="Consent receipt: a compact JWS signed by the gateway (key in the JWKS), "
        "with the fields of an ISO/IEC TS 27560 consent record."
    )
