"""What the pipeline hands the audit writer: one ``AuditEntry`` per request.

An entry is checked completely when it is built, in the caller's own coroutine. The writer
commits entries of concurrent requests in one INSERT; an entry the database would refuse (a
string too long for its column, a NUL character PostgreSQL cannot store) would fail the whole
batch and answer 503 to every request in it, so such an entry must fail here instead, alone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple, get_args

from gateway.database import utcnow
from gateway.identifiers import redact_nirs

SubjectKind = Literal["nir", "siren"]
Outcome = Literal["granted", "refused", "not_found", "error"]

SUBJECT_KINDS: Final[frozenset[str]] = frozenset(get_args(SubjectKind))
OUTCOMES: Final[frozenset[str]] = frozenset(get_args(Outcome))

# Column widths, shared with the models so the check here and the table cannot drift apart.
REQUEST_ID_LENGTH: Final = 128
CLIENT_ID_LENGTH: Final = 128
NAME_LENGTH: Final = 64
RECIPIENT_LENGTH: Final = 200
CASE_REFERENCE_LENGTH: Final = 100
LEGAL_BASIS_LENGTH: Final = 255
KEY_ID_LENGTH: Final = 64
SHA256_HEX_LENGTH: Final = 64
INT32_MAX: Final = 2**31 - 1

_HEX64 = re.compile(r"[0-9a-f]{64}")


class AuditSubject(NamedTuple):
    """A person whose data a request is about, pseudonymised: never the identifier itself."""

    kind: SubjectKind
    pseudonym: str
    key_id: str


def _text(name: str, value: str | None, limit: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"audit entry: {name} is required")
        return None
    if not isinstance(value, str):
        raise TypeError(f"audit entry: {name} must be a string")
    if required and not value:
        raise ValueError(f"audit entry: {name} is empty")
    if "\x00" in value:
        raise ValueError(f"audit entry: {name} contains a NUL character")
    if not value.isascii():  # ASCII text (the usual case) holds no lone surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"audit entry: {name} is not valid Unicode text") from exc
    # Free text comes from partners; a NIR typed into it must not reach the trail in clear.
    value = redact_nirs(value)
    if len(value) > limit:
        raise ValueError(f"audit entry: {name} is longer than {limit} characters")
    return value


def _integer(name: str, value: int | None, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"audit entry: {name} must be an integer")
    if not low <= value <= high:
        raise ValueError(f"audit entry: {name} must be between {low} and {high}")
    return value


def _subject(subject: AuditSubject | tuple[str, str, str]) -> AuditSubject:
    kind, pseudonym, key_id = subject
    if kind not in SUBJECT_KINDS:
        raise ValueError(f"audit entry: subject kind must be one of {sorted(SUBJECT_KINDS)}")
    if not isinstance(pseudonym, str) or not _HEX64.fullmatch(pseudonym):
        # Also what keeps an identifier passed by mistake out of the trail.
        raise ValueError("audit entry: a subject pseudonym is 64 lower-case hex digits")
    checked_key_id = _text("subject key_id", key_id, KEY_ID_LENGTH, required=True) or ""
    return AuditSubject(kind, pseudonym, checked_key_id)  # type: ignore[arg-type]


# The entry's text fields with their column widths and whether they are required: each is
# checked, and NIR-masked, alike.
_TEXT_FIELDS: Final = (
    ("request_id", REQUEST_ID_LENGTH, True),
    ("operation", NAME_LENGTH, True),
    ("client_id", CLIENT_ID_LENGTH, False),
    ("connector", NAME_LENGTH, False),
    ("purpose", NAME_LENGTH, False),
    ("recipient", RECIPIENT_LENGTH, False),
    ("legal_basis", LEGAL_BASIS_LENGTH, False),
    ("consent_id", NAME_LENGTH, False),
    ("case_reference", CASE_REFERENCE_LENGTH, False),
    ("reason_code", NAME_LENGTH, False),
)
_INTEGER_FIELDS: Final = (
    ("http_status", 100, 599),
    ("partner_id", 0, INT32_MAX),
    ("connector_version", 0, INT32_MAX),
    ("latency_us", 0, INT32_MAX),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One request that reached the pipeline, granted or refused, and whose data it carried.

    ``subjects`` lists every person whose data leaves (one per item of a bulk answer or feed
    page), as pseudonyms made by ``Pseudonymiser``. Free-text fields (purpose, recipient,
    case reference) have anything shaped like a NIR masked.
    """

    request_id: str
    operation: str
    outcome: Outcome
    http_status: int
    occurred_at: dt.datetime = field(default_factory=utcnow)
    client_id: str | None = None
    partner_id: int | None = None
    connector: str | None = None
    connector_version: int | None = None
    purpose: str | None = None
    recipient: str | None = None
    legal_basis: str | None = None
    consent_id: str | None = None
    case_reference: str | None = None
    reason_code: str | None = None
    response_sha256: str | None = None
    latency_us: int | None = None
    subjects: Sequence[AuditSubject] = ()

    def __post_init__(self) -> None:
        put = object.__setattr__
        if not isinstance(self.occurred_at, dt.datetime) or self.occurred_at.tzinfo is None:
            raise ValueError("audit entry: occurred_at must be a timezone-aware datetime")
        put(self, "occurred_at", self.occurred_at.astimezone(dt.UTC))
        for name, limit, required in _TEXT_FIELDS:
            value = getattr(self, name)
            checked = _text(name, value, limit, required=required)
            if checked is not value:
                put(self, name, checked)
        if self.outcome not in OUTCOMES:
            raise ValueError(f"audit entry: outcome must be one of {sorted(OUTCOMES)}")
        if self.http_status is None:
            raise ValueError("audit entry: http_status is required")
        for name, low, high in _INTEGER_FIELDS:
            _integer(name, getattr(self, name), low, high)
        if self.response_sha256 is not None and not (
            isinstance(self.response_sha256, str) and _HEX64.fullmatch(self.response_sha256)
        ):
            raise ValueError("audit entry: response_sha256 is 64 lower-case hex digits")
        put(self, "subjects", tuple(_subject(subject) for subject in self.subjects))
