"""How the registry is shown: the CLI's ``--json`` output and the operators' console."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from gateway.partners.models import Habilitation, OAuthClient, Partner


class PartnerView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    siret: str
    kind: str
    created_at: dt.datetime

    @classmethod
    def of(cls, partner: Partner) -> PartnerView:
        return cls(
            id=partner.id,
            name=partner.name,
            siret=partner.siret,
            kind=partner.kind,
            created_at=partner.created_at,
        )


class ClientView(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str
    partner: str
    auth_method: str
    key_ids: list[str] = Field(description="kid of each registered public key (none for secrets)")
    credential_expires_at: dt.datetime
    expires_soon: bool = Field(description="The credential ends within the warning window")
    expired: bool
    disabled_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def of(cls, client: OAuthClient, *, expires_soon: bool, now: dt.datetime) -> ClientView:
        keys = (client.jwks or {}).get("keys", [])
        return cls(
            client_id=client.client_id,
            partner=client.partner.name,
            auth_method=client.auth_method,
            key_ids=[str(key.get("kid", "")) for key in keys],
            credential_expires_at=client.credential_expires_at,
            expires_soon=expires_soon,
            expired=client.credential_expires_at <= now,
            disabled_at=client.disabled_at,
            created_at=client.created_at,
        )


class CreatedClientView(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str
    partner: str
    auth_method: str
    credential_expires_at: dt.datetime
    client_secret: str | None = Field(
        default=None, description="Shown this once; only its hash is kept"
    )


class HabilitationView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    partner: str
    scope: str
    purposes: list[str]
    legal_basis: str
    consent_required: bool
    valid_from_date: dt.date
    valid_until_date: dt.date | None
    rate_limit_per_minute: int | None
    released_fields: list[str] | None
    revoked_at: dt.datetime | None
    in_force: bool

    @classmethod
    def of(cls, habilitation: Habilitation, *, today: dt.date) -> HabilitationView:
        return cls(
            id=habilitation.id,
            partner=habilitation.partner.name,
            scope=habilitation.scope,
            purposes=list(habilitation.purposes),
            legal_basis=habilitation.legal_basis,
            consent_required=habilitation.consent_required,
            valid_from_date=habilitation.valid_from_date,
            valid_until_date=habilitation.valid_until_date,
            rate_limit_per_minute=habilitation.rate_limit_per_minute,
            released_fields=habilitation.released_fields,
            revoked_at=habilitation.revoked_at,
            in_force=habilitation.in_force_on(today),
        )
