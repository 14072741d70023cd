"""Outcomes every turnover version shares: not-found codes, range checks, query budget."""

from __future__ import annotations

import datetime as dt
from types import ModuleType
from typing import Any

import pytest
from factories import Connect, create_account, create_declaration, offline_context
from sqlalchemy.orm import Session

from connectors.kit import InvalidRequest, SubjectNotFound
from connectors.turnover import v1, v2

VERSIONS = pytest.mark.parametrize("version", [v1, v2], ids=["v1", "v2"])


async def by_siren(version: ModuleType, connect: Connect, siren: str, **range_: Any) -> Any:
    async with connect() as ctx:
        return await version.turnover_by_siren(siren=siren, ctx=ctx, **range_)


async def by_nir(version: ModuleType, connect: Connect, nir: str, **range_: Any) -> Any:
    search = getattr(version, f"TurnoverSearchV{version.VERSION.version}")
    body = search.model_validate({"nir": nir, **range_})
    async with connect() as ctx:
        return await version.turnover_by_nir(body=body, ctx=ctx)


@VERSIONS
async def test_unknown_siren_and_nir_are_subject_unknown(
    version: ModuleType, session: Session, connect: Connect
) -> None:
    known = create_account(session)
    session.commit()

    with pytest.raises(SubjectNotFound) as by_siren_error:
        await by_siren(version, connect, "732829320")
    with pytest.raises(SubjectNotFound) as by_nir_error:
        await by_nir(version, connect, "269054958815780")

    assert by_siren_error.value.code == by_nir_error.value.code == "subject.unknown"
    # The fixed detail never quotes the identifier looked up.
    assert "269054958815780" not in by_nir_error.value.detail
    assert known.siren != "732829320"


@VERSIONS
async def test_radiated_before_the_range_is_its_own_code(
    version: ModuleType, session: Session, connect: Connect
) -> None:
    account = create_account(
        session, radiation_date=dt.date(2025, 12, 31), radiation_reason="cessation d'activité"
    )
    create_declaration(session, account, "2025-11", sales_bic="10")
    session.commit()

    with pytest.raises(SubjectNotFound) as error:
        await by_siren(version, connect, account.siren, from_="2026-01", to="2026-06")
    assert error.value.code == "subject.radiated_before_period"

    # A range overlapping the activity still answers, later months shown as undeclared.
    answer = (await by_siren(version, connect, account.siren, from_="2025-11", to="2026-01")).body
    assert [(p.period, p.declared) for p in answer.periods] == [
        ("2025-11", True),
        ("2025-12", False),
        ("2026-01", False),
    ]


@VERSIONS
async def test_a_quarter_declared_before_radiation_still_answers(
    version: ModuleType, session: Session, connect: Connect
) -> None:
    """Radiated in January, asked from February: Q1 touches the range and was declared."""
    account = create_account(session, radiation_date=dt.date(2026, 1, 20))
    create_declaration(session, account, "2026-Q1", sales_bic="300")
    session.commit()

    answer = (await by_siren(version, connect, account.siren, from_="2026-02", to="2026-03")).body

    assert [(p.period, p.declared) for p in answer.periods] == [("2026-Q1", True)]


@VERSIONS
async def test_regime_classique_without_declarations_is_not_micro(
    version: ModuleType, session: Session, connect: Connect
) -> None:
    classique = create_account(session, regime="classique")
    former_micro = create_account(session, regime="classique")
    create_declaration(session, former_micro, "2025-03", sales_bic="80")
    session.commit()

    with pytest.raises(SubjectNotFound) as error:
        await by_siren(version, connect, classique.siren, from_="2026-01", to="2026-03")
    assert error.value.code == "turnover.not_micro_entrepreneur"

    # Declarations from the micro years are still this person's turnover for those months.
    answer = (
        await by_siren(version, connect, former_micro.siren, from_="2025-02", to="2025-03")
    ).body
    assert [(p.period, p.declared) for p in answer.periods] == [
        ("2025-02", False),
        ("2025-03", True),
    ]
    with pytest.raises(SubjectNotFound) as later:
        await by_nir(version, connect, former_micro.nir, **{"from": "2026-01"})
    assert later.value.code == "turnover.not_micro_entrepreneur"


@VERSIONS
@pytest.mark.parametrize(
    ("from_", "to"),
    [
        ("2026-05", "2026-04"),  # inverted
        ("2023-01", "2026-01"),  # 37 months
        ("0000-01", "0000-12"),  # no such year
        ("2020-01", None),  # 79 months up to the current month
    ],
)
async def test_bad_ranges_are_refused_before_any_lookup(
    version: ModuleType, from_: str, to: str | None
) -> None:
    with pytest.raises(InvalidRequest) as error:
        await by_siren(version, offline_context, "732829320", from_=from_, to=to)
    assert error.value.code == "range.invalid"
    with pytest.raises(InvalidRequest) as by_body:
        await by_nir(version, offline_context, "269054958815780", **{"from": from_, "to": to})
    assert by_body.value.code == "range.invalid"


@VERSIONS
async def test_a_36_month_range_is_accepted(
    version: ModuleType, session: Session, connect: Connect
) -> None:
    account = create_account(session)
    session.commit()

    answer = (await by_siren(version, connect, account.siren, from_="2023-08", to="2026-07")).body

    assert len(answer.periods) == 36


@VERSIONS
async def test_a_lookup_takes_one_query_however_many_periods(
    version: ModuleType, session: Session, connect: Connect, statements: list[str]
) -> None:
    """The account, its freshness and every declaration of the range in one query: no N+1."""
    account = create_account(session)
    for month in range(1, 13):
        create_declaration(session, account, f"2025-{month:02d}", sales_bic="1")
        create_declaration(
            session,
            account,
            f"2025-{month:02d}",
            sales_bic="2",
            declared_at=dt.datetime(2026, 1, month, tzinfo=dt.UTC),
        )
    session.commit()
    await by_siren(version, connect, account.siren)  # warm the pool
    statements.clear()

    answer = (await by_siren(version, connect, account.siren, from_="2025-01", to="2025-12")).body

    assert len(answer.periods) == 12
    queries = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1, queries
