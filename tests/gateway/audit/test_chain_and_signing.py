"""The chain's canonical form and the checkpoint signatures."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from gateway.audit import CheckpointSignatureError, Es256CheckpointSigner
from gateway.audit.chain import (
    FORMAT,
    GENESIS_HASH,
    RECORD_COLUMNS,
    SUBJECT_COLUMNS,
    canonical,
    epoch_microseconds,
    link,
)
from gateway.audit.models import AuditRecord, AuditSubjectEntry
from gateway.audit.signing import gateway_checkpoint_signer
from gateway.database import Database
from gateway.keys import KeyStore, KeyUse
from gateway.settings import Settings

WHEN = dt.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
RECORD = (
    41,
    WHEN,
    "req-1",
    "caf-instruction",
    7,
    "turnover",
    1,
    "data.disclosed",
    "rsa.instruction",
    "CAF 75 — Île",
    "code-action-sociale",
    None,
    "dossier 12",
    "granted",
    None,
    200,
    "ab" * 32,
    1500,
)
SUBJECTS = [(9, 41, "nir", "cd" * 32, "pk-20260101-00000000", WHEN)]


def test_every_column_is_covered_by_the_chain() -> None:
    """A column missing from the hashed form could be changed without breaking the chain."""
    assert tuple(column.name for column in AuditRecord.__table__.columns) == RECORD_COLUMNS
    assert tuple(column.name for column in AuditSubjectEntry.__table__.columns) == SUBJECT_COLUMNS


def test_the_format_is_frozen() -> None:
    """Changing the canonical form would make every existing link fail to verify.

    The expected value was computed outside Python: ``printf '%s\\n%s' <64 zeros> <canonical
    JSON> | sha256sum``.
    """
    assert link(GENESIS_HASH, 1, RECORD, SUBJECTS) == (
        "c4b68f579b07630ffc94527b07ea51d316783baae3fe163d5a4e01e7061e17b4"
    )


scalars = st.one_of(st.none(), st.integers(-(2**53), 2**53), st.text(max_size=30))


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(scalars, min_size=len(RECORD_COLUMNS), max_size=len(RECORD_COLUMNS)),
    position=st.integers(1, 2**53),
    when=st.datetimes(timezones=st.just(dt.UTC)),
)
def test_canonical_form_is_plain_compact_json(
    values: list[object], position: int, when: dt.datetime
) -> None:
    """Anyone can recompute a link with a standard JSON library and the column order."""
    values[1] = when
    expected = [FORMAT, position, [*values[:1], epoch_microseconds(when), *values[2:]], []]
    assert (
        canonical(position, values, [])
        == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_database_timestamps_read_raw_or_typed_agree() -> None:
    assert epoch_microseconds("2026-03-01 08:30:15.123456") == epoch_microseconds(WHEN)
    assert epoch_microseconds(WHEN.astimezone(dt.timezone(dt.timedelta(hours=2)))) == (
        epoch_microseconds(WHEN)
    )


def test_es256_signatures_verify_and_forgeries_do_not() -> None:
    signer = Es256CheckpointSigner.generate()
    token = signer.sign(b'{"position":5}')
    assert signer.verify(token).payload == b'{"position":5}'
    forger = Es256CheckpointSigner.generate()
    for forged in (forger.sign(b'{"position":5}'), token[:-4] + "AAAA", "not.a.jws", ""):
        with pytest.raises(CheckpointSignatureError):
            signer.verify(forged)


def test_a_retired_key_still_verifies_what_it_signed() -> None:
    old_key = ECKey.generate_key("P-256")
    old = Es256CheckpointSigner(old_key)
    token = old.sign(b"x")
    new = Es256CheckpointSigner(ECKey.generate_key("P-256"), trusted=[old_key])
    assert new.verify(token).payload == b"x"
    assert new.key_id != old.key_id
    assert "d" not in new.public_jwk()


def test_the_gateway_signs_with_its_published_audit_key(db: Database, settings: Settings) -> None:
    """Checkpoints must verify with the JWKS, across a rotation of the audit key."""
    signer = gateway_checkpoint_signer(settings, db.sync_engine)
    token = signer.sign(b"checkpoint")
    store = KeyStore(settings)
    with Session(db.sync_engine) as session:
        published = {key.kid for key in store.published(session, KeyUse.AUDIT)}
        assert signer.key_id in published
        store.rotate(session, KeyUse.AUDIT)
        session.commit()
    later = gateway_checkpoint_signer(settings, db.sync_engine)
    assert later.key_id != signer.key_id
    assert later.verify(token).payload == b"checkpoint"
    with pytest.raises(CheckpointSignatureError):
        later.verify(Es256CheckpointSigner.generate().sign(b"checkpoint"))
