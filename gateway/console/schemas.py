"""What a console search is made of: its filters, the subject it is about, its page cursor.

``AuditFilters`` is stored as JSON under a search handle (``staff_search.criteria``). It never
holds an identifier: a person typed by staff is kept as ``SubjectFilter``, the pseudonyms of
every identifier the reference store links to them, under every pseudonym key.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.audit.schemas import (
    CASE_REFERENCE_LENGTH,
    CLIENT_ID_LENGTH,
    KEY_ID_LENGTH,
    NAME_LENGTH,
    Outcome,
    SubjectKind,
)

PAGE_SIZE: Final = 50
_CURSOR = re.compile(r"^(-?[0-9]{1,19})\.([0-9]{1,19})$")
# Audit record ids are BIGINT: a larger number cannot be bound to a query on either database.
MAX_RECORD_ID: Final = 2**63 - 1
# The days a search may name. The trail holds nothing older than the gateway, nor anything
# from the future; bounding them keeps every instant computed from them (a day's end in UTC,
# the day after) far from the limits of ``datetime``, which year 1 and 9999 would cross.
FIRST_SEARCH_DATE: Final = dt.date(2000, 1, 1)
LAST_SEARCH_DATE: Final = dt.date(2100, 12, 31)
# Bidirectional overrides and isolates: invisible, they make a case reference read otherwise
# than it is stored (the "Trojan Source" trick).
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a character no free-text field of the console accepts.

    Control characters (NUL included: PostgreSQL cannot store it, and the audit trail refuses
    it), lone surrogates (not encodable as UTF-8) and bidirectional controls. Checked before
    anything is written, so that such input gets a field message, never a 500.
    """
    return any(
        unicodedata.category(character) in ("Cc", "Cs") or character in _BIDI_CONTROLS
        for character in value
    )


def in_search_range(day: dt.date) -> bool:
    return FIRST_SEARCH_DATE <= day <= LAST_SEARCH_DATE


class SubjectPseudonym(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: SubjectKind
    pseudonym: str = Field(pattern=r"^[0-9a-f]{64}$")
    key_id: str = Field(max_length=KEY_ID_LENGTH)


class SubjectFilter(BaseModel):
    """A person, as pseudonyms: ``typed`` says whether staff typed a NIR or a SIREN."""

    model_config = ConfigDict(frozen=True)

    typed: SubjectKind
    identifiers: int = Field(ge=1, description="identifiers of the person found (NIR, SIREN)")
    pseudonyms: tuple[SubjectPseudonym, ...] = Field(min_length=1)


class AuditFilters(BaseModel):
    """The criteria of an audit search; dates are days in the legal time zone, inclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    partner_id: int | None = Field(default=None, ge=0, le=2**31 - 1)
    client_id: str | None = Field(default=None, max_length=CLIENT_ID_LENGTH)
    connector: str | None = Field(default=None, max_length=NAME_LENGTH)
    connector_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    purpose: str | None = Field(default=None, max_length=NAME_LENGTH)
    outcome: Outcome | None = None
    subject: SubjectFilter | None = None
    reason: str | None = Field(default=None, max_length=CASE_REFERENCE_LENGTH)

    @field_validator("date_from", "date_to")
    @classmethod
    def _date_in_range(cls, value: dt.date | None) -> dt.date | None:
        # Also what turns a search saved before the bounds existed into "search unknown".
        if value is not None and not in_search_range(value):
            raise ValueError(f"a search date is between {FIRST_SEARCH_DATE} and {LAST_SEARCH_DATE}")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> AuditFilters:
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ValueError("the end date is before the start date")
        return self

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The UTC instants [since, until) the dates cover, midnight to midnight, legal time."""
        since = until = None
        if self.date_from is not None:
            since = _midnight(self.date_from, zone)
        if self.date_to is not None:
            until = _midnight(_clamped(self.date_to) + dt.timedelta(days=1), zone)
        return since, until

    @property
    def is_empty(self) -> bool:
        return self == AuditFilters()


def _clamped(day: dt.date) -> dt.date:
    # The validators keep dates in range; clamping again here means no way of building
    # filters (``model_construct`` skips validation) can make ``bounds`` overflow.
    return min(max(day, FIRST_SEARCH_DATE), LAST_SEARCH_DATE)


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(_clamped(day), dt.time(), zone).astimezone(dt.UTC)


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the last row shown, newest first (keyset pagination)."""

    occurred_at: dt.datetime
    record_id: int

    def encode(self) -> str:
        delta = self.occurred_at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return f"{delta // dt.timedelta(microseconds=1)}.{self.record_id}"

    @classmethod
    def decode(cls, value: str | None) -> Cursor | None:
        """The cursor in ``value``; ``None`` for a missing or malformed one (first page)."""
        match = _CURSOR.fullmatch(value or "")
        if match is None:
            return None
        try:
            moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                microseconds=int(match[1])
            )
        except OverflowError:
            return None
        record_id = int(match[2])
        # Nineteen digits reach past BIGINT: such an id would make the driver raise.
        if not 0 < record_id <= MAX_RECORD_ID:
            return None
        return cls(moment, record_id)


ConsentState = Literal["active", "revoked", "expired"]
