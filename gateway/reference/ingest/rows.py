"""The row of each dataset as a pydantic model, and how a failed validation is reported.

Every field is parsed by our own function, which raises a ``PydanticCustomError`` whose type is
the stable code of the rejection report (``siren.bad_checksum``, ``amount.negative``...) and
whose message is fixed text: a reason never repeats the value, since the value may be a NIR.
Pydantic's own errors are left for the two it detects itself, a missing field and an unknown
key, mapped to ``field.missing`` and ``field.unknown``.

Input values are strings (CSV) or JSON values; empty values have been removed before
validation, so that an empty required field reads as a missing one.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from gateway.identifiers import InvalidIdentifierError, parse_nir, parse_siren, redact_nirs
from gateway.reference.ingest.report import RowError
from gateway.reference.models import Category, Periodicity, Regime, StatusEventKind

__all__ = [
    "ROW_MODELS",
    "AccountRow",
    "CfpRow",
    "Dataset",
    "RowModel",
    "StatusEventRow",
    "TurnoverRow",
    "period_facts",
    "row_errors",
]


class Dataset(enum.StrEnum):
    """The datasets upstream sends; also the ``dataset`` of their ``IngestionRun`` rows."""

    ACCOUNTS = "accounts"
    STATUS_EVENTS = "status-events"
    TURNOVER = "turnover"
    CFP = "cfp"


def _fail(code: str, reason: str) -> PydanticCustomError:
    return PydanticCustomError(code, reason)


def _text(value: object, code: str, reason: str) -> str:
    if not isinstance(value, str):
        raise _fail(code, reason)
    return value


# --- identifiers -----------------------------------------------------------------------------


def _siren(value: object) -> str:
    text = _text(value, "siren.malformed", "a SIREN must be written as 9 digits")
    try:
        return _checked_siren(text)
    except InvalidIdentifierError as exc:
        raise _fail(exc.code, exc.reason) from None


# A SIREN recurs on many rows of a file (each period of each person): check it once.
_checked_siren = functools.lru_cache(maxsize=16_384)(parse_siren)


def _nir(value: object) -> str:
    text = _text(value, "nir.malformed", "a NIR must be written as text")
    try:
        return parse_nir(text)
    except InvalidIdentifierError as exc:
        raise _fail(exc.code, exc.reason) from None


# --- choices ---------------------------------------------------------------------------------


def _choice(members: type[enum.StrEnum], code: str) -> Callable[[object], str]:
    allowed = {member.value for member in members}
    reason = "must be one of: " + ", ".join(sorted(allowed))

    def parse(value: object) -> str:
        if not isinstance(value, str) or value.lower() not in allowed:
            raise _fail(code, reason)
        return value.lower()

    return parse


def _bounded_text(limit: int) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = _text(value, "text.malformed", "must be text")
        if "\x00" in text:
            # PostgreSQL cannot store it; SQLite would, and the two must agree.
            raise _fail("text.malformed", "must not contain a NUL character")
        if len(text) > limit:
            raise _fail("text.too_long", f"longer than {limit} characters")
        return text

    return parse


# --- dates -----------------------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A date, or a date and a time (seconds and fraction optional), then an optional offset.
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?",
    re.IGNORECASE,
)


def _date(value: object) -> dt.date:
    text = _text(value, "date.malformed", "a date must be written YYYY-MM-DD")
    if not _DATE.fullmatch(text):
        raise _fail("date.malformed", "a date must be written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _fail("date.malformed", "the date does not exist") from None


def _timestamp(value: object) -> dt.datetime:
    """An ISO date (midnight UTC) or datetime (UTC when it has no offset), as aware UTC."""
    text = _text(value, "datetime.malformed", "a timestamp must be an ISO 8601 date or datetime")
    if not _DATETIME.fullmatch(text):
        raise _fail("datetime.malformed", "a timestamp must be an ISO 8601 date or datetime")
    try:
        parsed = dt.datetime.fromisoformat(text.upper())
    except ValueError:
        raise _fail("datetime.malformed", "the date or time does not exist") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


# --- numbers ---------------------------------------------------------------------------------

_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def _decimal_parser(
    prefix: str, scale: int, max_integer_digits: int, noun: str
) -> Callable[[object], Decimal]:
    """A parser of non-negative decimals written with a dot, at most ``scale`` decimals."""
    malformed = (f"{prefix}.malformed", f"{noun} must be a number with a dot for decimals")
    negative = (f"{prefix}.negative", f"{noun} must not be negative")
    too_precise = (f"{prefix}.too_precise", f"{noun} has more than {scale} decimals")
    too_large = (f"{prefix}.too_large", f"{noun} is too large")

    def parse(value: object) -> Decimal:
        if type(value) is str:
            text = value
        elif type(value) is int:
            text = str(value)
        elif isinstance(value, Decimal) and value.is_finite():
            # JSON numbers may use exponents (1e3); write them out before counting decimals.
            text = format(value, "f")
        else:
            raise _fail(*malformed)
        match = _DECIMAL.fullmatch(text) if len(text) <= 40 else None
        if match is None:
            raise _fail(*malformed)
        sign, integer, fraction = match.groups()
        if sign and (integer.strip("0") or (fraction or "").strip("0")):
            raise _fail(*negative)
        if fraction is not None and len(fraction) > scale:
            raise _fail(*too_precise)
        if len(integer) > max_integer_digits and len(integer.lstrip("0")) > max_integer_digits:
            raise _fail(*too_large)
        return Decimal(text)

    return parse


# Numeric(14, 2): 12 digits before the point; Numeric(6, 3): 3.
_amount = _decimal_parser("amount", 2, 12, "an amount")
_percentage = _decimal_parser("rate", 3, 3, "a rate")


def _rate(value: object) -> Decimal:
    rate = _percentage(value)
    if rate > 100:
        raise _fail("rate.too_large", "a rate is a percentage, at most 100")
    return rate


def _year(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail("year.malformed", "a year must be written with 4 digits")
    text = str(value)
    if not re.fullmatch(r"[0-9]{4}", text):
        raise _fail("year.malformed", "a year must be written with 4 digits")
    year = int(text)
    if not 1900 <= year <= 2100:
        raise _fail("year.out_of_range", "the year is out of range")
    return year


# --- periods ---------------------------------------------------------------------------------

_PERIOD = re.compile(r"([0-9]{4})-(?:([0-9]{2})|[Qq]([1-4]))")


def _period(value: object) -> str:
    """``YYYY-MM`` or ``YYYY-Qn``, returned in canonical form (upper-case Q)."""
    text = _text(value, "period.malformed", "a period must be YYYY-MM or YYYY-Qn")
    match = _PERIOD.fullmatch(text)
    if match is None or (match.group(2) is not None and not 1 <= int(match.group(2)) <= 12):
        raise _fail("period.malformed", "a period must be YYYY-MM or YYYY-Qn (n from 1 to 4)")
    if not 1900 <= int(match.group(1)) <= 2100:
        raise _fail("period.malformed", "the period's year is out of range")
    return text.upper()


@functools.lru_cache(maxsize=1024)
def period_facts(period: str) -> tuple[str, dt.date]:
    """The periodicity and first day of a canonical period (``2026-03`` or ``2026-Q1``)."""
    year = int(period[:4])
    if period[5] == "Q":
        return Periodicity.QUARTERLY.value, dt.date(year, 3 * int(period[6]) - 2, 1)
    return Periodicity.MONTHLY.value, dt.date(year, int(period[5:7]), 1)


# --- models ----------------------------------------------------------------------------------

Siren = Annotated[str, PlainValidator(_siren)]
Nir = Annotated[str, PlainValidator(_nir)]
Day = Annotated[dt.date, PlainValidator(_date)]
Timestamp = Annotated[dt.datetime, PlainValidator(_timestamp)]
Amount = Annotated[Decimal, PlainValidator(_amount)]
Rate = Annotated[Decimal, PlainValidator(_rate)]
Year = Annotated[int, PlainValidator(_year)]
Period = Annotated[str, PlainValidator(_period)]
CategoryName = Annotated[str, PlainValidator(_choice(Category, "category.unknown"))]
RegimeName = Annotated[str, PlainValidator(_choice(Regime, "regime.unknown"))]
EventName = Annotated[str, PlainValidator(_choice(StatusEventKind, "event.unknown"))]
Detail = Annotated[str, PlainValidator(_bounded_text(200))]
Fund = Annotated[str, PlainValidator(_bounded_text(32))]


class RowModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    dataset: ClassVar[Dataset]
    # Header names, in the order of the published file layout.
    columns: ClassVar[tuple[str, ...]]


class AccountRow(RowModel):
    dataset = Dataset.ACCOUNTS
    columns = ("nir", "siren", "category", "regime", "affiliation_date")

    nir: Nir
    siren: Siren
    category: CategoryName
    regime: RegimeName
    affiliation_date: Day


_REGIMES = frozenset(member.value for member in Regime)


class StatusEventRow(RowModel):
    dataset = Dataset.STATUS_EVENTS
    columns = ("siren", "event", "effective_date", "detail")

    siren: Siren
    event: EventName
    effective_date: Day
    detail: Detail | None = None

    @model_validator(mode="after")
    def _detail_fits_event(self) -> StatusEventRow:
        if self.event == StatusEventKind.RADIATION and self.detail is None:
            raise PydanticCustomError(
                "detail.missing", "a radiation needs its reason in detail", {"field": "detail"}
            )
        if self.event == StatusEventKind.REGIME_CHANGE and self.detail not in _REGIMES:
            raise PydanticCustomError(
                "detail.not_a_regime",
                "a regime change needs the new regime in detail: micro or classique",
                {"field": "detail"},
            )
        if (
            self.event == StatusEventKind.AFFILIATION
            and self.detail is not None
            and self.detail not in _REGIMES
        ):
            # The detail of an affiliation is the regime it starts with, as the accounts
            # load records it; anything else would be silently ignored by the status replay.
            raise PydanticCustomError(
                "detail.not_a_regime",
                "an affiliation's detail, when given, is its regime: micro or classique",
                {"field": "detail"},
            )
        return self


class TurnoverRow(RowModel):
    dataset = Dataset.TURNOVER
    columns = ("siren", "period", "sales_bic", "services_bic", "services_bnc", "declared_at")

    siren: Siren
    period: Period
    sales_bic: Amount
    services_bic: Amount
    services_bnc: Amount
    declared_at: Timestamp


class CfpRow(RowModel):
    dataset = Dataset.CFP
    columns = (
        "siren",
        "year",
        "base",
        "rate",
        "amount_due",
        "amount_paid",
        "paid_at",
        "fund",
    )

    siren: Siren
    year: Year
    base: Amount
    rate: Rate
    amount_due: Amount
    amount_paid: Amount
    paid_at: Day | None = None
    fund: Fund


ROW_MODELS: dict[Dataset, type[RowModel]] = {
    model.dataset: model for model in (AccountRow, StatusEventRow, TurnoverRow, CfpRow)
}


# --- errors ----------------------------------------------------------------------------------


_PYDANTIC_CODES = {
    "missing": ("field.missing", "the field is required"),
    "extra_forbidden": ("field.unknown", "this field is not part of the dataset"),
}


def _field_name(error: Any) -> str:
    location = error.get("loc") or ()
    if location:
        return str(location[0])
    context = error.get("ctx") or {}
    return str(context.get("field", ""))


def row_errors(exc: ValidationError) -> list[RowError]:
    """The report entries for a failed validation; none of them quotes a value."""
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        kind = error["type"]
        if kind in _PYDANTIC_CODES:
            code, reason = _PYDANTIC_CODES[kind]
        elif "." in kind:
            code, reason = kind, error["msg"]
        else:
            code, reason = "field.invalid", "the value is not valid"
        # A JSON key is the sender's text: mask it like any other value that may hold a NIR.
        field = redact_nirs(_field_name(error))[:64]
        found.append(RowError(field, code, reason))
    return found
