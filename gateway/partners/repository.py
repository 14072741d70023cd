"""Every query on the partner registry.

The statements that the request path also runs on the async session (habilitations in force,
disabled clients) are module-level builders, so both sessions run the very same SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from gateway.partners.models import Habilitation, OAuthClient, Partner


def habilitations_in_force_query(
    day: dt.date, partner_id: int | None = None
) -> Select[Habilitation]:
    query = select(Habilitation).where(
        Habilitation.revoked_at.is_(None),
        Habilitation.valid_from_date <= day,
        or_(Habilitation.valid_until_date.is_(None), Habilitation.valid_until_date >= day),
    )
    if partner_id is not None:
        query = query.where(Habilitation.partner_id == partner_id)
    return query.order_by(Habilitation.id)


def disabled_client_ids_query() -> Select[str]:
    return select(OAuthClient.client_id).where(OAuthClient.disabled_at.is_not(None))


class PartnerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_name(self, name: str) -> Partner | None:
        return self.session.scalar(select(Partner).where(Partner.name == name))

    def by_siret(self, siret: str) -> Partner | None:
        return self.session.scalar(select(Partner).where(Partner.siret == siret))

    def all(self) -> Sequence[Partner]:
        return self.session.scalars(select(Partner).order_by(Partner.name)).all()

    def add(self, partner: Partner) -> Partner:
        self.session.add(partner)
        self.session.flush()
        return partner


class ClientRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_client_id(self, client_id: str) -> OAuthClient | None:
        return self.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))

    def all(self, partner_id: int | None = None) -> Sequence[OAuthClient]:
        query = select(OAuthClient).order_by(OAuthClient.partner_id, OAuthClient.id)
        if partner_id is not None:
            query = query.where(OAuthClient.partner_id == partner_id)
        return self.session.scalars(query).all()

    def add(self, client: OAuthClient) -> OAuthClient:
        self.session.add(client)
        self.session.flush()
        return client


class HabilitationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_id(self, habilitation_id: int) -> Habilitation | None:
        return self.session.get(Habilitation, habilitation_id)

    def all(self, partner_id: int | None = None) -> Sequence[Habilitation]:
        query = select(Habilitation).order_by(Habilitation.partner_id, Habilitation.id)
        if partner_id is not None:
            query = query.where(Habilitation.partner_id == partner_id)
        return self.session.scalars(query).all()

    def in_force(self, day: dt.date, partner_id: int | None = None) -> Sequence[Habilitation]:
        return self.session.scalars(habilitations_in_force_query(day, partner_id)).all()

    def unrevoked(self, partner_id: int, scope: str) -> Sequence[Habilitation]:
        return self.session.scalars(
            select(Habilitation)
            .where(
                Habilitation.partner_id == partner_id,
                Habilitation.scope == scope,
                Habilitation.revoked_at.is_(None),
            )
            .order_by(Habilitation.id)
        ).all()

    def add(self, habilitation: Habilitation) -> Habilitation:
        self.session.add(habilitation)
        self.session.flush()
        return habilitation
