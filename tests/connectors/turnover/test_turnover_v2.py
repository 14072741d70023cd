"""Turnover v2: amounts per activity, declaration dates and the history of rectifications."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, get_args

from factories import Connect, create_account, create_declaration
from pydantic import BaseModel
from sqlalchemy.orm import Session

from connectors.kit import Subject
from connectors.turnover import v2
from gateway.pipeline.minimise import minimise

UTC = dt.UTC


def at(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment).replace(tzinfo=UTC)


def model_in(annotation: Any) -> type[BaseModel]:
    """The model inside an annotation such as ``list[Model] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        try:
            return model_in(arg)
        except LookupError:
            continue
    raise LookupError(annotation)


def test_manifest() -> None:
    assert v2.VERSION.key == "turnover.v2"
    assert v2.VERSION.scope == "turnover:read"
    assert v2.VERSION.deprecation is None
    assert v2.VERSION.prefix == "/api/v2"


def test_every_releasable_field_is_optional_in_the_model() -> None:
    """A habilitation may withhold these: a required field would make the answer invalid."""
    assert {"periods.amounts", "periods.rectifications"} <= v2.VERSION.releasable
    for path in v2.VERSION.releasable:
        model: type[BaseModel] = v2.TurnoverAnswerV2
        *parents, leaf = path.split(".")
        for name in parents:
            model = model_in(model.model_fields[name].annotation)
        assert not model.model_fields[leaf].is_required(), path


async def test_latest_value_amounts_and_rectification_history(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_declaration(
        session,
        account,
        "2026-05",
        sales_bic="1200",
        services_bic="900",
        declared_at=at("2026-06-02T18:04:11"),
    )
    create_declaration(
        session,
        account,
        "2026-05",
        sales_bic="1200",
        services_bic="1150",
        declared_at=at("2026-06-12T09:30:00"),
    )
    create_declaration(
        session,
        account,
        "2026-05",
        sales_bic="1100",
        services_bic="1150",
        services_bnc="10",
        declared_at=at("2026-06-20T08:00:00"),
    )
    create_declaration(session, account, "2026-04", services_bnc="300")
    session.commit()

    async with connect() as ctx:
        disclosure = await v2.turnover_by_siren(
            siren=account.siren, from_="2026-04", to="2026-06", ctx=ctx
        )

    april, may, june = disclosure.body.periods
    assert may.total == Decimal("2260.00")
    assert may.declared_at == at("2026-06-20T08:00:00")
    assert may.amounts == v2.TurnoverAmountsV2(
        sales_bic=Decimal("1100"), services_bic=Decimal("1150"), services_bnc=Decimal("10")
    )
    assert may.rectifications is not None
    assert [(r.declared_at, r.total) for r in may.rectifications] == [
        (at("2026-06-02T18:04:11"), Decimal("2100.00")),
        (at("2026-06-12T09:30:00"), Decimal("2350.00")),
    ]
    assert may.rectifications[0].amounts == v2.TurnoverAmountsV2(
        sales_bic=Decimal("1200"), services_bic=Decimal("900"), services_bnc=Decimal("0")
    )
    assert april.rectifications == []
    assert april.amounts is not None
    assert april.amounts.services_bnc == Decimal("300.00")
    assert (june.declared, june.total, june.declared_at, june.amounts) == (False, None, None, None)
    assert june.rectifications == []
    assert disclosure.subjects == (Subject("siren", account.siren),)


async def test_quarterly_by_nir(session: Session, connect: Connect) -> None:
    account = create_account(session)
    create_declaration(session, account, "2026-Q1", sales_bic="100", services_bnc="50")
    session.commit()

    body = v2.TurnoverSearchV2.model_validate(
        {"nir": account.nir, "from": "2026-02", "to": "2026-07"}
    )
    async with connect() as ctx:
        disclosure = await v2.turnover_by_nir(body=body, ctx=ctx)

    answer = disclosure.body
    assert answer.periodicity == "quarterly"
    assert [(p.period, p.total) for p in answer.periods] == [
        ("2026-Q1", Decimal("150.00")),
        ("2026-Q2", None),
        ("2026-Q3", None),
    ]
    assert disclosure.subjects == (Subject("nir", account.nir), Subject("siren", account.siren))


async def test_withholding_the_split_leaves_no_split_anywhere(
    session: Session, connect: Connect
) -> None:
    """A partner without the split must not read it through the rectification history."""
    account = create_account(session)
    create_declaration(session, account, "2026-05", sales_bic="1", declared_at=at("2026-06-01"))
    create_declaration(session, account, "2026-05", sales_bic="2", declared_at=at("2026-06-09"))
    session.commit()
    async with connect() as ctx:
        answer = (
            await v2.turnover_by_siren(siren=account.siren, from_="2026-05", to="2026-05", ctx=ctx)
        ).body
    released = {"periods.rectifications"}

    data = minimise(answer.model_dump(mode="json"), v2.VERSION.releasable - released)

    (period,) = data["periods"]
    assert "amounts" not in period
    assert period["rectifications"] == [{"declared_at": "2026-06-01T00:00:00Z", "total": "1.00"}]
    assert "sales_bic" not in str(data)
