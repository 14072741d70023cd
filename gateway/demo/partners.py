"""The four demo partners: registered, habilitated, each with a client and its private key.

Everything goes through :mod:`gateway.partners.service`, as an operator's commands would. The
purposes granted are the ones the mock partners state (:mod:`mocks`), so the demo and the
contract tests agree with the partners by construction. Running it again changes nothing
that is already in place: a partner, a habilitation in force or a working client is kept.

Private keys are written to ``<var_dir>/demo/<kind>.jwk`` (owner-only), the client ids beside
them: the partners hold them, the gateway only registers the public halves.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from gateway.database import utcnow
from gateway.errors import NotFoundError
from gateway.partners import service
from gateway.partners.models import OAuthClient
from gateway.settings import Settings
from mocks import caf, cnam, pole_emploi, training_fund
from mocks.common.profile import PartnerProfile

# Short: the audit trail records the legal basis of every disclosure in 64 characters.
STATUTE = "CRPA, art. L. 114-8 (« Dites-le nous une fois »)"
CONSENT = "RGPD, art. 6.1.a (consentement de la personne)"


@dataclass(frozen=True, slots=True)
class HabilitationSpec:
    scope: str
    purposes: tuple[str, ...]
    legal_basis: str = STATUTE
    consent_required: bool = False
    released_fields: tuple[str, ...] | None = None
    """Releasable fields covered; None: all of them."""


@dataclass(frozen=True, slots=True)
class DemoPartner:
    profile: PartnerProfile
    habilitations: tuple[HabilitationSpec, ...]


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    """What a partner machine needs to call the gateway."""

    profile: PartnerProfile
    client_id: str
    key_path: Path


DEMO_PARTNERS: tuple[DemoPartner, ...] = (
    DemoPartner(
        caf.PROFILE,
        (
            HabilitationSpec("status:feed", (caf.PROFILE.purpose,)),
            HabilitationSpec("turnover:read", (caf.PROFILE.purpose,)),
        ),
    ),
    DemoPartner(
        pole_emploi.PROFILE,
        (
            HabilitationSpec("turnover:read", (pole_emploi.PROFILE.purpose,)),
            HabilitationSpec("acre:read", (pole_emploi.PROFILE.purpose,)),
            # Supporting a business creator is not a legal duty: it rests on consent.
            HabilitationSpec(
                "turnover:read",
                (pole_emploi.CONSENT_PURPOSE,),
                legal_basis=CONSENT,
                consent_required=True,
            ),
            HabilitationSpec("consent:write", (pole_emploi.CONSENT_PURPOSE,), CONSENT),
        ),
    ),
    DemoPartner(
        cnam.PROFILE,
        (
            HabilitationSpec("status:feed", (cnam.PROFILE.purpose,)),
            # The decision and its period only: which criterion was met would tell CNAM
            # whether the person received unemployment benefit.
            HabilitationSpec("acre:read", (cnam.PROFILE.purpose,), released_fields=()),
        ),
    ),
    DemoPartner(
        training_fund.PROFILE,
        (HabilitationSpec("cfp:read", (training_fund.PROFILE.purpose,)),),
    ),
)


def key_directory(settings: Settings) -> Path:
    return settings.var_dir / "demo"


def set_up_partners(
    session: Session,
    settings: Settings,
    key_dir: Path,
    partners: Sequence[DemoPartner] = DEMO_PARTNERS,
) -> list[DemoCredentials]:
    """Register what is missing; the caller commits (then the written keys are usable)."""
    today = service.legal_today(settings)
    return [_set_up(session, settings, key_dir, partner, today) for partner in partners]


def _set_up(
    session: Session, settings: Settings, key_dir: Path, partner: DemoPartner, today: dt.date
) -> DemoCredentials:
    profile = partner.profile
    try:
        service.get_partner(session, profile.name)
    except NotFoundError:
        service.add_partner(session, name=profile.name, siret=profile.siret, kind=profile.kind)
        session.flush()
    held = [
        habilitation
        for habilitation in service.list_habilitations(session, profile.name)
        if habilitation.in_force_on(today)
    ]
    for spec in partner.habilitations:
        wanted = set(spec.purposes)
        if any(h.scope == spec.scope and set(h.purposes) == wanted for h in held):
            continue
        habilitation = service.grant_habilitation(
            session,
            partner_name=profile.name,
            scope=spec.scope,
            purposes=list(spec.purposes),
            legal_basis=spec.legal_basis,
            consent_required=spec.consent_required,
            today=today,
        )
        if spec.released_fields is not None:
            habilitation.released_fields = list(spec.released_fields)
    session.flush()
    return _credentials(session, settings, key_dir, profile)


def _credentials(
    session: Session, settings: Settings, key_dir: Path, profile: PartnerProfile
) -> DemoCredentials:
    stem = profile.kind
    key_path = key_dir / f"{stem}.jwk"
    id_path = key_dir / f"{stem}.client-id"
    if key_path.exists() and id_path.exists():
        client_id = id_path.read_text(encoding="utf-8").strip()
        if _usable(session, client_id, key_path):
            return DemoCredentials(profile, client_id, key_path)
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    created = service.create_client(
        session,
        settings,
        partner_name=profile.name,
        jwks={"keys": [{**key.as_dict(private=False), "use": "sig", "alg": "ES256"}]},
    )
    session.flush()
    key_dir.mkdir(parents=True, exist_ok=True)
    _write_private(key_path, json.dumps(key.as_dict(private=True), indent=2) + "\n")
    id_path.write_text(created.client.client_id + "\n", encoding="utf-8")
    return DemoCredentials(profile, created.client.client_id, key_path)


def _usable(session: Session, client_id: str, key_path: Path) -> bool:
    """Whether the registered client still works with the key on disk."""
    try:
        client: OAuthClient = service.get_client(session, client_id)
        kid = json.loads(key_path.read_text(encoding="utf-8")).get("kid")
    except (NotFoundError, OSError, ValueError):
        return False
    kids = {key.get("kid") for key in (client.jwks or {}).get("keys", [])}
    return client.disabled_at is None and client.credential_expires_at > utcnow() and kid in kids


def _write_private(path: Path, text: str) -> None:
    # Created owner-only from the start: a private key is never world-readable, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
