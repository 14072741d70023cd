"""Pseudonyms and a person's right of access; invariant 3: no NIR in clear in audit rows."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
from audit_factories import NIR, OTHER_NIR, SIREN, make_entry
from sqlalchemy import inspect, text

from gateway.audit import (
    AuditWriter,
    Es256CheckpointSigner,
    Pseudonymiser,
    identify,
    run_sealer_once,
    subject_history,
)
from gateway.audit.pseudonym import hmac_pseudonym
from gateway.database import Database
from gateway.identifiers import NIR_SHAPE, InvalidIdentifierError
from gateway.settings import Settings

SPACED_NIR = f"{NIR[0]} {NIR[1:3]} {NIR[3:5]} {NIR[5:7]} {NIR[7:10]} {NIR[10:13]} {NIR[13:]}"


async def test_one_person_one_pseudonym_whatever_the_formatting(
    pseudonymiser: Pseudonymiser,
) -> None:
    key_id, plain = await pseudonymiser.pseudonym("nir", NIR)
    assert await pseudonymiser.pseudonym("nir", SPACED_NIR) == (key_id, plain)
    assert re.fullmatch(r"[0-9a-f]{64}", plain)
    assert key_id.startswith("pk-")


async def test_an_invalid_identifier_gets_no_pseudonym(pseudonymiser: Pseudonymiser) -> None:
    with pytest.raises(InvalidIdentifierError):
        await pseudonymiser.pseudonym("nir", NIR[:-2] + "00")


def test_the_kind_is_part_of_the_pseudonym() -> None:
    """A NIR and a SIREN are different subjects even when their characters agree."""
    secret = b"k" * 32
    assert hmac_pseudonym(secret, "nir", "123456789") != hmac_pseudonym(
        secret, "siren", "123456789"
    )


async def test_the_key_is_cached_and_rotation_changes_it(
    db: Database, settings: Settings, pseudonymiser: Pseudonymiser
) -> None:
    first = await pseudonymiser.pseudonym("siren", SIREN)
    new_key = Pseudonymiser(db, settings).rotate()
    # Another process learns of the rotation once its cache expires.
    assert await pseudonymiser.pseudonym("siren", SIREN) == first
    fresh = Pseudonymiser(db, settings, refresh_seconds=0)
    key_id, value = await fresh.pseudonym("siren", SIREN)
    assert key_id == new_key
    assert value != first[1]


async def test_two_processes_creating_the_first_key_share_one(
    db: Database, settings: Settings
) -> None:
    one, two = Pseudonymiser(db, settings), Pseudonymiser(db, settings)
    assert (await one.pseudonym("nir", NIR))[0] == (await two.pseudonym("nir", NIR))[0]


def test_what_staff_type_is_recognised() -> None:
    assert identify(SPACED_NIR) == ("nir", NIR)
    assert identify(f" {SIREN[:3]} {SIREN[3:6]} {SIREN[6:]} ") == ("siren", SIREN)
    with pytest.raises(InvalidIdentifierError) as caught:
        identify(NIR[:-2] + "00")
    assert NIR[:13] not in str(caught.value)


async def record_history(
    db: Database, settings: Settings, signer: Es256CheckpointSigner
) -> dict[str, list[int]]:
    """Disclosures of NIR and SIREN before and after a key rotation, and of someone else."""
    ids: dict[str, list[int]] = {"nir": [], "siren": [], "other": [], "refused": []}
    pseudonymiser = Pseudonymiser(db, settings, refresh_seconds=0)
    async with AuditWriter(db) as writer:
        for round_ in range(2):
            nir = await pseudonymiser.subject("nir", NIR)
            siren = await pseudonymiser.subject("siren", SIREN)
            other = await pseudonymiser.subject("nir", OTHER_NIR)
            ids["nir"].append(
                await writer.write(make_entry(round_, subjects=[nir], case_reference=f"ref {NIR}"))
            )
            ids["siren"].append(
                await writer.write(make_entry(10 + round_, subjects=[siren, other]))
            )
            ids["other"].append(await writer.write(make_entry(20 + round_, subjects=[other])))
            ids["refused"].append(
                await writer.write(
                    make_entry(
                        30 + round_,
                        outcome="refused",
                        http_status=403,
                        reason_code="consent.missing",
                        subjects=[nir],
                    )
                )
            )
            if round_ == 0:
                pseudonymiser.rotate()
    await db.async_engine.dispose()
    run_sealer_once(db.sync_engine, signer)
    return ids


async def test_access_by_nir_and_by_siren_across_a_key_rotation(
    db: Database, settings: Settings, signer: Es256CheckpointSigner
) -> None:
    """Without every key's pseudonym, a rotation would hide earlier disclosures."""
    ids = await record_history(db, settings, signer)
    lookup = Pseudonymiser(db, settings)
    by_nir = subject_history(db.sync_engine, lookup, "nir", NIR)
    assert [entry.record_id for entry in by_nir] == ids["nir"]
    assert len({entry.key_id for entry in by_nir}) == 2
    assert by_nir[0].purpose == "rsa.instruction"
    assert by_nir[0].partner_id == 7
    by_siren = subject_history(db.sync_engine, lookup, "siren", SIREN)
    assert [entry.record_id for entry in by_siren] == ids["siren"]
    with_refusals = subject_history(db.sync_engine, lookup, "nir", NIR, include_refused=True)
    assert sorted(entry.record_id for entry in with_refusals) == sorted(ids["nir"] + ids["refused"])


async def test_no_identifier_in_clear_in_any_audit_row(
    db: Database, settings: Settings, signer: Es256CheckpointSigner
) -> None:
    """Invariant 3: a dump of the audit tables must not reveal a NIR or a SIREN."""
    await record_history(db, settings, signer)
    digests = {"pseudonym", "response_sha256", "chain_hash", "head_hash"}
    opaque = {"signature", "secret_ciphertext"}
    tables = [
        name for name in inspect(db.sync_engine).get_table_names() if name.startswith("audit")
    ]
    assert {"audit_record", "audit_subject", "audit_pseudonym_key"} <= set(tables)
    with db.sync_engine.connect() as conn:
        for table in tables:
            rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()  # noqa: S608
            for row in rows:
                for column, value in row.items():
                    shown = str(value)
                    assert NIR not in shown, (table, column)
                    assert SIREN not in shown, (table, column)
                    assert OTHER_NIR not in shown, (table, column)
                    if column in digests:
                        # Hex digests cannot carry anything else (and may, by chance, hold
                        # 15 decimal digits in a row, which is not a NIR).
                        assert re.fullmatch(r"[0-9a-f]{64}", shown), (table, column)
                    elif column not in opaque:
                        assert not NIR_SHAPE.search(shown), (table, column)


async def test_a_key_past_its_refresh_is_used_while_a_newer_one_is_read(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    pseudonymiser = Pseudonymiser(db, settings, refresh_seconds=60, clock=lambda: now[0])
    first = await pseudonymiser.pseudonym("siren", SIREN)
    new_key = Pseudonymiser(db, settings).rotate()
    load = pseudonymiser._load
    release = threading.Event()

    def slow_load() -> Any:
        release.wait(5)
        return load()

    monkeypatch.setattr(pseudonymiser, "_load", slow_load)
    now[0] = 61.0
    # The reload is held: a request waiting for it would time out.
    assert await asyncio.wait_for(pseudonymiser.pseudonym("siren", SIREN), 1) == first
    release.set()
    for _ in range(100):
        if (await pseudonymiser.pseudonym("siren", SIREN))[0] == new_key:
            break
        await asyncio.sleep(0.01)
    assert (await pseudonymiser.pseudonym("siren", SIREN))[0] == new_key
