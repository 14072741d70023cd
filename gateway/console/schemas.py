"""What a console search is made of: its filters, the subject it is about, its page cursor.

``AuditFilters`` is stored as JSON under a search handle (``staff_search.criteria``). It never
holds an identifier: a person typed by staff is kept as ``SubjectFilter``, the pseudonyms of
every identifier the reference store links to them, under every pseudonym key.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    @model_validator(mode="after")
    def _dates_in_order(self) -> AuditFilters:
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ValueError("the end date is before the start date")
        return self

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The UTC instants [since, until) the dates cover, midnight to midnight, legal time."""
        since = until = None
        if self.date_from is not None:
            since = dt.datetime.combine(self.date_from, dt.time(), zone).astimezone(dt.UTC)
        if self.date_to is not None:
            next_day = self.date_to + dt.timedelta(days=1)
            until = dt.datetime.combine(next_day, dt.time(), zone).astimezone(dt.UTC)
        return since, until

    @property
    def is_empty(self) -> bool:
        return self == AuditFilters()


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
        return cls(moment, int(match[2]))


ConsentState = Literal["active", "revoked", "expired"]
