"""Turnover v1: declared totals per period, by SIREN and by NIR."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from factories import (
    Connect,
    create_account,
    create_declaration,
    create_ingestion_run,
)
from sqlalchemy.orm import Session

from connectors.kit import Subject
from connectors.turnover import v1

UTC = dt.UTC


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=UTC)


def summary(answer: v1.TurnoverAnswerV1) -> list[tuple[str, bool, Decimal | None]]:
    return [(period.period, period.declared, period.total) for period in answer.periods]


def test_manifest_declares_the_deprecation_and_scope() -> None:
    """A wrong date here would send partners the wrong Sunset header or 410 too early."""
    assert v1.VERSION.key == "turnover.v1"
    assert v1.VERSION.scope == "turnover:read"
    deprecation = v1.VERSION.deprecation
    assert deprecation is not None
    assert deprecation.deprecated_on == dt.date(2026, 9, 1)
    assert deprecation.sunset_on == dt.date(2027, 3, 31)
    assert deprecation.successor == "/api/v2/turnover"
    assert {(op.method, op.path) for op in v1.VERSION.operations} == {
        ("GET", "/turnover/{siren}"),
        ("POST", "/turnover/search"),
    }


async def test_monthly_range_shows_latest_values_and_undeclared_months(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_declaration(session, account, "2026-01", sales_bic="1000", services_bic="200.50")
    create_declaration(session, account, "2026-02")  # a zero declaration is a declaration
    create_declaration(
        session, account, "2026-04", services_bnc="500", declared_at=at("2026-05-02T10:00")
    )
    create_declaration(
        session, account, "2026-04", services_bnc="700", declared_at=at("2026-05-20T10:00")
    )
    other = create_account(session)
    create_declaration(session, other, "2026-03", sales_bic="999")
    session.commit()

    async with connect() as ctx:
        disclosure = await v1.turnover_by_siren(
            siren=account.siren, from_="2026-01", to="2026-05", ctx=ctx
        )

    answer = disclosure.body
    assert answer.siren == account.siren
    assert answer.periodicity == "monthly"
    assert (answer.from_month, answer.to_month) == ("2026-01", "2026-05")
    assert summary(answer) == [
        ("2026-01", True, Decimal("1200.50")),
        ("2026-02", True, Decimal("0.00")),
        ("2026-03", False, None),  # the other account's March is not this one's
        ("2026-04", True, Decimal("700.00")),  # the rectification, not the first declaration
        ("2026-05", False, None),
    ]
    april = answer.periods[3]
    assert (april.start_date, april.end_date) == (dt.date(2026, 4, 1), dt.date(2026, 4, 30))
    assert disclosure.subjects == (Subject("siren", account.siren),)
    assert answer.source == "URSSAF — reference store"
    # Amounts are exact decimal strings in JSON, never floats.
    assert '"total":"1200.50"' in answer.model_dump_json()


async def test_quarterly_declarant_gets_every_quarter_touching_the_range(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_declaration(session, account, "2025-Q4", sales_bic="3000")
    create_declaration(session, account, "2026-Q1", sales_bic="4000")
    create_declaration(session, account, "2026-Q2", sales_bic="5000")
    session.commit()

    async with connect() as ctx:
        answer = (
            await v1.turnover_by_siren(siren=account.siren, from_="2026-02", to="2026-07", ctx=ctx)
        ).body

    assert answer.periodicity == "quarterly"
    assert summary(answer) == [
        ("2026-Q1", True, Decimal("4000.00")),
        ("2026-Q2", True, Decimal("5000.00")),
        ("2026-Q3", False, None),
    ]
    assert answer.periods[2].periodicity == "quarterly"
    assert answer.periods[2].end_date == dt.date(2026, 9, 30)


async def test_undeclared_quarters_keep_the_periodicity_of_earlier_declarations(
    session: Session, connect: Connect
) -> None:
    """Nothing declared in the range: the grid still follows the declarant's quarters."""
    account = create_account(session)
    create_declaration(session, account, "2025-Q2", sales_bic="10")
    session.commit()

    async with connect() as ctx:
        answer = (
            await v1.turnover_by_siren(siren=account.siren, from_="2026-01", to="2026-06", ctx=ctx)
        ).body

    assert answer.periodicity == "quarterly"
    assert summary(answer) == [("2026-Q1", False, None), ("2026-Q2", False, None)]


async def test_a_change_of_periodicity_inside_the_range_shows_both(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_declaration(session, account, "2025-11", sales_bic="1")
    create_declaration(session, account, "2026-Q1", sales_bic="3")
    session.commit()

    async with connect() as ctx:
        answer = (
            await v1.turnover_by_siren(siren=account.siren, from_="2025-10", to="2026-06", ctx=ctx)
        ).body

    assert answer.periodicity == "quarterly"
    assert summary(answer) == [
        ("2025-10", False, None),
        ("2025-11", True, Decimal("1.00")),
        ("2025-12", False, None),
        ("2026-Q1", True, Decimal("3.00")),
        ("2026-Q2", False, None),
    ]


async def test_micro_account_without_any_declaration_gets_empty_months(
    session: Session, connect: Connect
) -> None:
    """No declaration is an answer (every period listed as such), not an error."""
    account = create_account(session)
    session.commit()

    async with connect(today=dt.date(2026, 7, 15)) as ctx:
        answer = (await v1.turnover_by_siren(siren=account.siren, ctx=ctx)).body

    assert answer.periodicity is None
    assert (answer.from_month, answer.to_month) == ("2025-08", "2026-07")
    assert len(answer.periods) == 12
    assert not any(period.declared for period in answer.periods)


async def test_search_by_nir_answers_without_echoing_the_nir(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_declaration(session, account, "2026-03", services_bic="42")
    session.commit()
    spaced = " ".join([account.nir[:1], account.nir[1:3], account.nir[3:5], account.nir[5:]])

    body = v1.TurnoverSearchV1.model_validate({"nir": spaced, "from": "2026-03", "to": "2026-03"})
    async with connect() as ctx:
        disclosure = await v1.turnover_by_nir(body=body, ctx=ctx)

    assert summary(disclosure.body) == [("2026-03", True, Decimal("42.00"))]
    assert disclosure.subjects == (Subject("nir", account.nir), Subject("siren", account.siren))
    assert account.nir not in disclosure.body.model_dump_json()


def test_search_body_refuses_unknown_fields() -> None:
    """A typo such as ``form`` must not silently fall back to the default range."""
    with pytest.raises(ValueError, match="form"):
        v1.TurnoverSearchV1.model_validate({"nir": "269054958815780", "form": "2026-01"})


async def test_as_of_is_the_latest_load_of_the_datasets_read(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_ingestion_run(session, "accounts", at("2026-07-01T02:00"))
    create_ingestion_run(session, "turnover", at("2026-07-02T02:00"))
    create_ingestion_run(session, "turnover", at("2026-06-30T02:00"))
    create_ingestion_run(session, "cfp", at("2026-07-09T02:00"))  # not read by this answer
    session.commit()

    async with connect() as ctx:
        answer = (await v1.turnover_by_siren(siren=account.siren, ctx=ctx)).body

    assert answer.as_of == at("2026-07-02T02:00")


async def test_as_of_is_null_before_any_load(session: Session, connect: Connect) -> None:
    account = create_account(session)
    session.commit()

    async with connect() as ctx:
        answer = (await v1.turnover_by_siren(siren=account.siren, ctx=ctx)).body

    assert answer.as_of is None
