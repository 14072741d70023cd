"""Partners with clients, habilitations and tokens, and reference data, for pipeline tests."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select, text

from gateway.audit.models import AuditRecord, AuditSubjectEntry
from gateway.database import Database
from gateway.identifiers import siren_with_checksum, siret_with_checksum
from gateway.partners import service
from gateway.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RECIPIENT = siret_with_checksum(siren_with_checksum("21750001") + "0001")
PURPOSE = "RSA_INSTRUCTION"


@dataclass
class Partner:
    """A partner with one private_key_jwt client; ``headers(scope)`` is a ready request."""

    db: Database
    settings: Settings
    name: str
    kind: str
    client_id: str = ""
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", private=True))
    tokens: dict[str, str] = field(default_factory=dict)

    def grant(
        self,
        scope: str,
        *,
        purposes: Sequence[str] = (PURPOSE,),
        consent_required: bool = False,
        released_fields: Sequence[str] | None = None,
    ) -> int:
        with self.db.sync_session.begin() as session:
            habilitation = service.grant_habilitation(
                session,
                partner_name=self.name,
                scope=scope,
                purposes=list(purposes),
                legal_basis="Code de la sécurité sociale, art. L. 114-8",
                consent_required=consent_required,
                today=service.legal_today(self.settings),
            )
            if released_fields is not None:
                habilitation.released_fields = list(released_fields)
            return habilitation.id

    def assertion(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.settings.issuer + "/oauth/token",
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode({"alg": "ES256"}, claims, self.key, algorithms=["ES256"])

    async def token(self, http: httpx.AsyncClient, scope: str) -> str:
        if scope not in self.tokens:
            response = await http.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "scope": scope,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion(),
                },
            )
            assert response.status_code == 200, response.text
            self.tokens[scope] = response.json()["access_token"]
        return self.tokens[scope]

    async def headers(
        self, http: httpx.AsyncClient, scope: str, *, purpose: str | None = PURPOSE, **extra: str
    ) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {await self.token(http, scope)}"}
        if purpose is not None:
            headers["Purpose"] = purpose
        headers["Recipient"] = RECIPIENT
        headers.update(extra)
        return headers


_partners = iter(range(1, 10_000))


def make_partner(db: Database, settings: Settings, name: str = "CAF", kind: str = "caf") -> Partner:
    partner = Partner(db, settings, name, kind)
    number = next(_partners)
    with db.sync_session.begin() as session:
        service.add_partner(
            session,
            name=name,
            siret=siret_with_checksum(siren_with_checksum(f"{13000000 + number:08d}") + "0001"),
            kind=kind,
        )
        created = service.create_client(
            session,
            settings,
            partner_name=name,
            jwks={"keys": [partner.key.as_dict(private=False)]},
        )
        partner.client_id = created.client.client_id
    return partner


async def audit_rows(db: Database) -> list[AuditRecord]:
    async with db.session() as session:
        return list((await session.scalars(select(AuditRecord).order_by(AuditRecord.id))).all())


async def audit_subjects(db: Database, record_id: int | None = None) -> list[AuditSubjectEntry]:
    query = select(AuditSubjectEntry).order_by(AuditSubjectEntry.id)
    if record_id is not None:
        query = query.where(AuditSubjectEntry.record_id == record_id)
    async with db.session() as session:
        return list((await session.scalars(query)).all())


HEX_DIGEST = re.compile(r"\b[0-9a-f]{64}\b")


def dump_audit_tables(db: Database) -> str:
    """Every audit and consent row as text, to scan for identifiers in clear.

    Pseudonyms and digests are replaced first: 64 random hex digits may hold a run of 15
    digits shaped like a NIR without being one.
    """
    chunks: list[Any] = []
    with db.sync_engine.connect() as conn:
        for table in (
            "audit_record",
            "audit_subject",
            "consent",
            "consent_subject",
            "consent_event",
        ):
            chunks.extend(conn.execute(text(f"SELECT * FROM {table}")).all())  # noqa: S608
    # Values as text, not repr: repr would escape a non-breaking space and hide what it joins.
    lines = (" | ".join(str(value) for value in row) for row in chunks)
    return HEX_DIGEST.sub("<hex>", "\n".join(lines))


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
