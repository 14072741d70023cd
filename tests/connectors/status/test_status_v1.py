"""Status v1: regime, category, affiliation, radiation and history, by SIREN and by NIR."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import (
    Connect,
    create_account,
    create_ingestion_run,
    create_status_event,
)
from sqlalchemy.orm import Session

from connectors.kit import Subject, SubjectNotFound
from connectors.status import VERSIONS, v1


def test_manifest_and_route_order() -> None:
    assert v1.VERSION.key == "status.v1"
    assert v1.VERSION.scope == "status:read"
    assert {(op.method, op.path) for op in v1.VERSION.operations} == {
        ("GET", "/status/{siren}"),
        ("POST", "/status/search"),
    }
    # Both are mounted under /api/v1: /status/events must be routed before /status/{siren}.
    assert [version.key for version in VERSIONS] == ["status-events.v1", "status.v1"]


async def test_history_after_radiation_and_reaffiliation(
    session: Session, connect: Connect
) -> None:
    account = create_account(
        session,
        category="commercant",
        regime="classique",
        affiliation_date=dt.date(2025, 3, 1),
    )
    # Inserted out of date order: the history is by effective date.
    create_status_event(session, account, "affiliation", dt.date(2025, 3, 1))
    create_status_event(session, account, "affiliation", dt.date(2021, 1, 4))
    create_status_event(
        session, account, "radiation", dt.date(2023, 6, 30), detail="cessation d'activité"
    )
    create_status_event(
        session, account, "regime_change", dt.date(2025, 3, 1), detail="micro -> classique"
    )
    other = create_account(session)
    create_status_event(session, other, "radiation", dt.date(2024, 1, 1))
    create_ingestion_run(session, "status-events", dt.datetime(2026, 7, 1, 3, tzinfo=dt.UTC))
    create_ingestion_run(session, "turnover", dt.datetime(2026, 7, 9, 3, tzinfo=dt.UTC))
    session.commit()

    async with connect() as ctx:
        disclosure = await v1.status_by_siren(siren=account.siren, ctx=ctx)

    answer = disclosure.body
    assert answer.siren == account.siren
    assert (answer.regime.code, answer.regime.label) == (
        "classique",
        "Travailleur indépendant (régime classique)",
    )
    assert (answer.category.code, answer.category.label) == ("commercant", "Commerçant")
    assert answer.affiliation_date == dt.date(2025, 3, 1)
    assert (answer.radiation_date, answer.radiation_reason) == (None, None)
    assert [(h.event, h.effective_date, h.detail) for h in answer.history] == [
        ("affiliation", dt.date(2021, 1, 4), None),
        ("radiation", dt.date(2023, 6, 30), "cessation d'activité"),
        ("affiliation", dt.date(2025, 3, 1), None),
        ("regime_change", dt.date(2025, 3, 1), "micro -> classique"),
    ]
    assert answer.source == "URSSAF — reference store"
    assert answer.as_of == dt.datetime(2026, 7, 1, 3, tzinfo=dt.UTC)  # turnover is not read
    assert disclosure.subjects == (Subject("siren", account.siren),)


async def test_radiated_account_by_nir(session: Session, connect: Connect) -> None:
    account = create_account(
        session,
        category="liberal",
        radiation_date=dt.date(2026, 2, 28),
        radiation_reason="cessation d'activité",
    )
    create_status_event(session, account, "affiliation", dt.date(2020, 1, 1))
    create_status_event(
        session, account, "radiation", dt.date(2026, 2, 28), detail="cessation d'activité"
    )
    session.commit()

    async with connect() as ctx:
        disclosure = await v1.status_by_nir(
            body=v1.StatusSearchV1.model_validate({"nir": account.nir}), ctx=ctx
        )

    answer = disclosure.body
    assert (answer.regime.code, answer.regime.label) == ("micro", "Micro-entrepreneur")
    assert answer.category.label == "Profession libérale"
    assert (answer.radiation_date, answer.radiation_reason) == (
        dt.date(2026, 2, 28),
        "cessation d'activité",
    )
    assert [h.event for h in answer.history] == ["affiliation", "radiation"]
    assert disclosure.subjects == (Subject("nir", account.nir), Subject("siren", account.siren))
    assert account.nir not in answer.model_dump_json()


async def test_account_without_events_has_an_empty_history(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    session.commit()

    async with connect() as ctx:
        answer = (await v1.status_by_siren(siren=account.siren, ctx=ctx)).body

    assert answer.history == []
    assert answer.as_of is None


async def test_unknown_identifiers(session: Session, connect: Connect) -> None:
    create_account(session)
    session.commit()

    async with connect() as ctx:
        with pytest.raises(SubjectNotFound) as by_siren:
            await v1.status_by_siren(siren="732829320", ctx=ctx)
        with pytest.raises(SubjectNotFound) as by_nir:
            await v1.status_by_nir(
                body=v1.StatusSearchV1.model_validate({"nir": "269054958815780"}), ctx=ctx
            )

    assert by_siren.value.code == by_nir.value.code == "subject.unknown"


async def test_a_lookup_is_one_query(
    session: Session, connect: Connect, statements: list[str]
) -> None:
    account = create_account(session)
    for year in range(2010, 2026):
        create_status_event(session, account, "affiliation", dt.date(year, 1, 1))
    session.commit()
    async with connect() as ctx:
        await v1.status_by_siren(siren=account.siren, ctx=ctx)  # warm the pool
    statements.clear()

    async with connect() as ctx:
        answer = (await v1.status_by_siren(siren=account.siren, ctx=ctx)).body

    assert len(answer.history) == 16
    assert len([sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]) == 1


def test_search_body_refuses_unknown_fields() -> None:
    with pytest.raises(ValueError, match="siren"):
        v1.StatusSearchV1.model_validate({"nir": "269054958815780", "siren": "732829320"})
