"""Row validation: each field's codes, and reasons that never repeat a value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.identifiers import NIR_SHAPE, nir_with_key, siren_with_checksum
from gateway.reference.ingest.report import RowError
from gateway.reference.ingest.rows import (
    AccountRow,
    CfpRow,
    RowModel,
    StatusEventRow,
    TurnoverRow,
    period_facts,
    row_errors,
)

SIREN = siren_with_checksum("73282932")
NIR = nir_with_key("1850775123456")
CORSICAN_NIR = nir_with_key("285072A123456")

ACCOUNT: dict[str, object] = {
    "nir": NIR,
    "siren": SIREN,
    "category": "artisan",
    "regime": "micro",
    "affiliation_date": "2020-01-15",
}
STATUS: dict[str, object] = {
    "siren": SIREN,
    "event": "radiation",
    "effective_date": "2026-01-31",
    "detail": "x",
}
TURNOVER: dict[str, object] = {
    "siren": SIREN,
    "period": "2026-Q1",
    "sales_bic": "10.5",
    "services_bic": "0",
    "services_bnc": "0.00",
    "declared_at": "2026-04-10",
}
CFP: dict[str, object] = {
    "siren": SIREN,
    "year": "2025",
    "base": "30000",
    "rate": "0.3",
    "amount_due": "90.00",
    "amount_paid": "90",
    "paid_at": "2026-02-10",
    "fund": "FAFCEA",
}


def _errors(model: type[RowModel], values: dict[str, object]) -> list[RowError]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(values)
    return row_errors(caught.value)


def test_valid_rows_are_parsed_to_their_types() -> None:
    account = AccountRow.model_validate({**ACCOUNT, "nir": CORSICAN_NIR, "category": "Liberal"})
    assert (account.nir, account.category, account.affiliation_date) == (
        CORSICAN_NIR,
        "liberal",
        dt.date(2020, 1, 15),
    )
    turnover = TurnoverRow.model_validate({**TURNOVER, "period": "2026-q1"})
    assert turnover.period == "2026-Q1"
    assert period_facts(turnover.period) == ("quarterly", dt.date(2026, 1, 1))
    assert period_facts("2026-11") == ("monthly", dt.date(2026, 11, 1))
    assert turnover.sales_bic == Decimal("10.5")
    assert turnover.declared_at == dt.datetime(2026, 4, 10, tzinfo=dt.UTC)
    cfp = CfpRow.model_validate({**CFP, "year": 2025, "rate": Decimal("0.250")})
    assert (cfp.year, cfp.rate, cfp.paid_at) == (2025, Decimal("0.250"), dt.date(2026, 2, 10))
    unpaid = CfpRow.model_validate({key: value for key, value in CFP.items() if key != "paid_at"})
    assert unpaid.paid_at is None


BASES: dict[type[RowModel], dict[str, object]] = {
    AccountRow: ACCOUNT,
    StatusEventRow: STATUS,
    TurnoverRow: TURNOVER,
    CfpRow: CFP,
}


@pytest.mark.parametrize(
    ("model", "field", "value", "code"),
    [
        (AccountRow, "nir", NIR[:13] + "00", "nir.bad_key"),
        (AccountRow, "nir", NIR[:14], "nir.malformed"),
        (AccountRow, "nir", 185077512345678, "nir.malformed"),
        (AccountRow, "category", "agriculteur", "category.unknown"),
        (AccountRow, "regime", "auto", "regime.unknown"),
        (AccountRow, "affiliation_date", "2020-02-30", "date.malformed"),
        (AccountRow, "affiliation_date", "15/01/2020", "date.malformed"),
        (AccountRow, "siren", SIREN[:8] + str((int(SIREN[8]) + 1) % 10), "siren.bad_checksum"),
        (AccountRow, "siren", 732829320, "siren.malformed"),
        (StatusEventRow, "event", "death", "event.unknown"),
        (StatusEventRow, "detail", None, "detail.missing"),
        (StatusEventRow, "detail", "x" * 201, "text.too_long"),
        (StatusEventRow, "detail", "nul\x00byte", "text.malformed"),  # PostgreSQL refuses NUL
        (TurnoverRow, "sales_bic", "1.001", "amount.too_precise"),
        (TurnoverRow, "sales_bic", Decimal("1.001"), "amount.too_precise"),
        (TurnoverRow, "sales_bic", True, "amount.malformed"),
        (TurnoverRow, "sales_bic", 1.5, "amount.malformed"),
        (TurnoverRow, "sales_bic", "+1", "amount.malformed"),
        (TurnoverRow, "sales_bic", " 1", "amount.malformed"),
        (TurnoverRow, "sales_bic", "\u0661\u0662", "amount.malformed"),  # Arabic-Indic digits
        (TurnoverRow, "sales_bic", "-5", "amount.negative"),
        (TurnoverRow, "services_bic", "1" * 50, "amount.malformed"),
        (TurnoverRow, "period", "2026-00", "period.malformed"),
        (TurnoverRow, "period", "1850-01", "period.malformed"),
        (TurnoverRow, "period", "2026-Q0", "period.malformed"),
        (TurnoverRow, "declared_at", "2026-04-10T25:00", "datetime.malformed"),
        (TurnoverRow, "declared_at", "tomorrow", "datetime.malformed"),
        (CfpRow, "year", "25", "year.malformed"),
        (CfpRow, "year", "1850", "year.out_of_range"),
        (CfpRow, "rate", "0.3333", "rate.too_precise"),
        (CfpRow, "rate", "150", "rate.too_large"),
        (CfpRow, "rate", "-0.1", "rate.negative"),
        (CfpRow, "fund", "F" * 33, "text.too_long"),
        (CfpRow, "paid_at", "2026-13-01", "date.malformed"),
        (CfpRow, "fund", None, "field.missing"),
        (CfpRow, "surprise", "1", "field.unknown"),
    ],
)
def test_a_bad_field_gets_its_code(
    model: type[RowModel], field: str, value: object, code: str
) -> None:
    # None stands for a field left out, as the readers leave out empty values.
    values = {**BASES[model], field: value}
    errors = _errors(model, {key: item for key, item in values.items() if item is not None})
    assert [(error.field, error.code) for error in errors] == [(field, code)]
    assert errors[0].reason


@pytest.mark.parametrize(
    ("event", "detail", "valid"),
    [
        ("radiation", "cessation d'activité", True),
        ("radiation", None, False),
        ("regime_change", "classique", True),
        ("regime_change", "auto", False),
        ("regime_change", None, False),
        ("affiliation", None, True),
        ("affiliation", "micro", True),
        ("affiliation", "hello", False),
    ],
)
def test_the_detail_an_event_needs(event: str, detail: str | None, valid: bool) -> None:
    values: dict[str, object] = {"siren": SIREN, "event": event, "effective_date": "2026-01-31"}
    if detail is not None:
        values["detail"] = detail
    if valid:
        assert StatusEventRow.model_validate(values).detail == detail
    else:
        errors = _errors(StatusEventRow, values)
        assert [error.field for error in errors] == ["detail"]
        assert errors[0].code in {"detail.missing", "detail.not_a_regime"}


def test_every_problem_of_a_row_is_reported() -> None:
    errors = _errors(
        TurnoverRow, {"siren": SIREN, "period": "2026", "sales_bic": "-1", "extra": "1"}
    )
    assert sorted((error.field, error.code) for error in errors) == [
        ("declared_at", "field.missing"),
        ("extra", "field.unknown"),
        ("period", "period.malformed"),
        ("sales_bic", "amount.negative"),
        ("services_bic", "field.missing"),
        ("services_bnc", "field.missing"),
    ]


# Values from characters that form no 4-character run of any fixed reason text, so that a
# value found in a reason can only have been copied there.
_VALUES = st.one_of(
    st.text(alphabet="0123456789AB .-/:T+", min_size=4, max_size=24),
    st.from_regex(r"[12][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{8}", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(
    value=_VALUES,
    field=st.sampled_from(["nir", "siren", "category", "regime", "affiliation_date"]),
)
def test_no_reason_ever_quotes_the_value(value: str, field: str) -> None:
    """The report goes back to the sender by mail: a value in it could be someone's NIR."""
    try:
        AccountRow.model_validate({**ACCOUNT, field: value})
    except ValidationError as exc:
        for error in row_errors(exc):
            assert value not in error.reason
            assert value.strip() not in error.reason
            assert NIR_SHAPE.search(error.reason) is None


def test_a_nir_sent_as_a_key_is_masked_in_the_field_name() -> None:
    errors = _errors(TurnoverRow, {**TURNOVER, NIR: "1"})
    assert [(error.field, error.code) for error in errors] == [("[NIR]", "field.unknown")]
