"""Shared clients handed to connectors as ``ctx.services``, made and closed with the app."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import structlog

from connectors.acre.pole_emploi import PoleEmploiClient
from gateway.database import Database
from gateway.keys.models import KeyUse
from gateway.keys.store import ActiveKey, KeyStore
from gateway.settings import Settings

log = structlog.get_logger(__name__)

ATTESTATION_TYPE = "cfp-attestation+jwt"
KEY_REFRESH_SECONDS = 60.0


class AttestationSigner:
    """Signs CFP attestations with the current attestation key, held in memory.

    Signing happens up to 10,000 times in one request, so it does no I/O: the key is loaded at
    startup and reloaded every minute, which is how long a rotation takes to reach a process.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._store = KeyStore(settings)
        self._issuer = settings.issuer
        self._key: ActiveKey | None = None

    @property
    def issuer(self) -> str:
        return self._issuer

    def load(self) -> None:
        with self._db.sync_session.begin() as session:
            self._key = self._store.current(session, KeyUse.ATTESTATION)

    def sign(self, claims: dict[str, Any]) -> str:
        if self._key is None:
            raise RuntimeError("the attestation key is not loaded")
        payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
        return self._key.sign_compact(payload, {"typ": ATTESTATION_TYPE})


async def _refresh(signer: AttestationSigner, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), KEY_REFRESH_SECONDS)
        try:
            await asyncio.to_thread(signer.load)
        except Exception as exc:
            # The key in memory stays valid; a later refresh will pick up a rotation.
            log.warning("attestation_key_refresh_failed", error_type=type(exc).__name__)


@contextlib.asynccontextmanager
async def connector_services(db: Database, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    signer = AttestationSigner(db, settings)
    await asyncio.to_thread(signer.load)
    pole_emploi = PoleEmploiClient(
        settings.pole_emploi_url,
        settings.pole_emploi_client_id,
        settings.pole_emploi_client_secret,
        timeout_seconds=settings.pole_emploi_timeout_seconds,
    )
    stop = asyncio.Event()
    refresher = asyncio.create_task(_refresh(signer, stop), name="attestation-key-refresh")
    try:
        yield {"attestation_signer": signer, "pole_emploi": pole_emploi}
    finally:
        stop.set()
        await refresher
        await pole_emploi.aclose()
