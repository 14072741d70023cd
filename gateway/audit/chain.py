"""The hash chain: the canonical form of a sealed record and how links are computed.

Link ``n`` of the chain is::

    chain_hash[n] = hex(SHA-256(chain_hash[n-1] as 64 ASCII hex digits || "\\n" || canonical[n]))

with ``chain_hash[0]`` 64 zeros (or, after a purge, the head hash of the anchor checkpoint).
``canonical[n]`` is the UTF-8 JSON array ``[format, position, record, subjects]`` where
``record`` lists every column of the record in ``RECORD_COLUMNS`` order and ``subjects`` lists,
in id order, one array per subject entry with every column in ``SUBJECT_COLUMNS`` order. It is
serialised without insignificant whitespace, non-ASCII characters left as they are; for the
only value types used (strings, integers below 2**53, null) that is the JSON Canonicalization
Scheme of RFC 8785, so anyone can recompute the chain without this code. Timestamps are
integer microseconds since the Unix epoch (UTC), which both databases store exactly. Arrays in
a fixed column order rather than objects with sorted keys: the same content, and ``verify``,
which serialises every record, runs about twice as fast.

The column lists are fixed per ``FORMAT``: adding a column to a table is a new format, not a
silent change of what old links covered (a test compares them with the tables).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any, Final

FORMAT: Final = 1
GENESIS_HASH: Final = "0" * 64

RECORD_COLUMNS: Final = (
    "id",
    "occurred_at",
    "request_id",
    "client_id",
    "partner_id",
    "connector",
    "connector_version",
    "operation",
    "purpose",
    "recipient",
    "legal_basis",
    "consent_id",
    "case_reference",
    "outcome",
    "reason_code",
    "http_status",
    "response_sha256",
    "latency_us",
)
SUBJECT_COLUMNS: Final = ("id", "record_id", "subject_kind", "pseudonym", "key_id", "occurred_at")

_RECORD_TIME = RECORD_COLUMNS.index("occurred_at")
_SUBJECT_TIME = SUBJECT_COLUMNS.index("occurred_at")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)  # noqa: DTZ001 - naive values are UTC without a label
_MICROSECOND = dt.timedelta(microseconds=1)
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
)
_PAYLOAD_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def epoch_microseconds(value: dt.datetime | str | int) -> int:
    """Microseconds since the epoch of a timestamp, aware, naive UTC, or SQLite's raw text.

    Raises ``ValueError`` or ``TypeError`` for anything else (SQLite keeps any value anywhere).
    """
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"a timestamp, not {type(value).__name__}")
    if value.tzinfo is None:
        return (value - _NAIVE_EPOCH) // _MICROSECOND
    return (value - _EPOCH) // _MICROSECOND


def canonical(position: int, record: Sequence[Any], subjects: Sequence[Sequence[Any]]) -> bytes:
    """The canonical bytes of a record (values in ``RECORD_COLUMNS`` order) at ``position``."""
    values = list(record)
    values[_RECORD_TIME] = epoch_microseconds(values[_RECORD_TIME])
    subject_rows = []
    for subject in subjects:
        subject_values = list(subject)
        subject_values[_SUBJECT_TIME] = epoch_microseconds(subject_values[_SUBJECT_TIME])
        subject_rows.append(subject_values)
    # Every column is an integer, a string or null; anything else (a float, say) would have no
    # single canonical form, and the encoder refuses what JSON cannot hold.
    document = [FORMAT, position, values, subject_rows]
    return _ENCODER.encode(document).encode("utf-8")


def link(
    previous: str, position: int, record: Sequence[Any], subjects: Sequence[Sequence[Any]]
) -> str:
    """The chain hash of ``record`` sealed at ``position`` after a link hashed ``previous``."""
    digest = hashlib.sha256(previous.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical(position, record, subjects))
    return digest.hexdigest()


def checkpoint_payload(
    position: int, head_hash: str, record_count: int, created_at: dt.datetime | str | int
) -> bytes:
    """What a checkpoint's signature covers; ``verify`` rebuilds it from the stored columns."""
    return _PAYLOAD_ENCODER.encode(
        {
            "type": "audit.checkpoint",
            "format": FORMAT,
            "position": position,
            "head_hash": head_hash,
            "record_count": record_count,
            "created_at": epoch_microseconds(created_at),
        }
    ).encode("utf-8")


def purge_payload(
    anchor_position: int,
    head_hash: str,
    records_deleted: int,
    cutoff_at: dt.datetime | str | int,
    purged_at: dt.datetime | str | int,
) -> bytes:
    """What a purge record's signature covers."""
    return _PAYLOAD_ENCODER.encode(
        {
            "type": "audit.purge",
            "format": FORMAT,
            "anchor_position": anchor_position,
            "head_hash": head_hash,
            "records_deleted": records_deleted,
            "cutoff_at": epoch_microseconds(cutoff_at),
            "purged_at": epoch_microseconds(purged_at),
        }
    ).encode("utf-8")
