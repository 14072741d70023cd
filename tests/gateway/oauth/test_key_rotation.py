"""Rotating the token key: old tokens keep working until they expire, new ones use the new key."""

from __future__ import annotations

import datetime as dt

import httpx
import jwt as pyjwt
from oauth_support import JwtClient, Registry, bearer, fetch_token
from sqlalchemy import update

from gateway.database import Database, utcnow
from gateway.keys.models import KeyUse, SigningKey
from gateway.keys.store import KeyStore
from gateway.settings import Settings


async def _published_kids(http: httpx.AsyncClient) -> set[str]:
    return {key["kid"] for key in (await http.get("/.well-known/jwks.json")).json()["keys"]}


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    http: httpx.AsyncClient, caf: JwtClient, registry: Registry
) -> None:
    old_token = await fetch_token(http, caf, "turnover:read")
    old_kid = pyjwt.get_unverified_header(old_token)["kid"]

    new_kid = registry.rotate_token_key()
    new_token = await fetch_token(http, caf, "turnover:read")

    assert new_kid != old_kid
    assert pyjwt.get_unverified_header(new_token)["kid"] == new_kid
    assert {old_kid, new_kid} <= await _published_kids(http)
    for token in (old_token, new_token):
        response = await http.get("/api/test/turnover", headers=bearer(token))
        assert response.status_code == 200


async def test_the_old_key_leaves_the_jwks_once_its_last_token_has_expired(
    http: httpx.AsyncClient,
    caf: JwtClient,
    registry: Registry,
    db: Database,
    settings: Settings,
) -> None:
    old_token = await fetch_token(http, caf, "turnover:read")
    old_kid = pyjwt.get_unverified_header(old_token)["kid"]
    exp = pyjwt.decode(old_token, options={"verify_signature": False})["exp"]
    new_kid = registry.rotate_token_key()
    store = KeyStore(settings)
    last_valid = dt.datetime.fromtimestamp(exp, dt.UTC) + dt.timedelta(
        seconds=settings.token_leeway_seconds
    )

    with db.sync_session() as session:
        while_valid = {k.kid for k in store.published(session, KeyUse.TOKEN, now=last_valid)}
        afterwards = {
            k.kid
            for k in store.published(
                session, KeyUse.TOKEN, now=last_valid + dt.timedelta(minutes=2)
            )
        }
    assert old_kid in while_valid
    assert old_kid not in afterwards
    assert new_kid in afterwards

    # Seen from the outside: once the bound has passed, the key is gone from the JWK set.
    with db.sync_engine.begin() as connection:
        connection.execute(
            update(SigningKey)
            .where(SigningKey.kid == old_kid)
            .values(last_signed_expiry_at=utcnow() - dt.timedelta(hours=1))
        )
    published = await _published_kids(http)
    assert old_kid not in published
    assert new_kid in published


async def test_a_retired_key_that_signed_nothing_is_withdrawn_at_once(
    db: Database, settings: Settings
) -> None:
    store = KeyStore(settings)
    with db.sync_session() as session, session.begin():
        first = store.current(session, KeyUse.TOKEN).kid
        second = store.rotate(session, KeyUse.TOKEN).kid
    with db.sync_session() as session:
        published = {key.kid for key in store.published(session, KeyUse.TOKEN)}
    assert published == {second}
    assert first not in published
