"""CFP attestations v1, called as the pipeline calls them, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import jwt
import pytest
from cfp_support import ISSUER, TODAY, Connect, Es256Signer
from factories import (
    create_account,
    create_cfp_payment,
    create_ingestion_run,
    new_nir,
    new_siren,
)
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connectors.cfp.attestation import ATTESTATION_TYP
from connectors.cfp.v1 import (
    MAX_BATCH_ITEMS,
    VERSION,
    CfpAttestation,
    CfpAttestationAnswer,
    CfpBatchAnswer,
    CfpBatchItem,
    CfpBatchRequest,
    batch_attestations,
    get_attestation,
)
from connectors.kit import (
    InvalidRequest,
    Subject,
    SubjectNotFound,
    TooManyItems,
    UpstreamUnavailable,
)
from gateway.reference.models import Account, CfpPayment


def _verify_with_pyjwt(token: str, signer: Es256Signer) -> dict[str, Any]:
    key = jwt.PyJWK(signer.public_jwk())
    claims: dict[str, Any] = jwt.decode(
        token, key=key, algorithms=["ES256"], options={"verify_aud": False}
    )
    return claims


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(_b64decode(token.split(".")[1]))
    return claims


def test_version_declares_scope_and_both_operations() -> None:
    # A wrong scope or path would expose the attestations under another permission or URL.
    assert VERSION.scope == "cfp:read"
    assert VERSION.key == "cfp.v1"
    routes = {(op.method, op.path): op for op in VERSION.operations}
    assert set(routes) == {
        ("GET", "/cfp/attestations/{siren}/{year}"),
        ("POST", "/cfp/attestations/batch"),
    }
    single = routes[("GET", "/cfp/attestations/{siren}/{year}")]
    assert single.subject is not None
    assert single.subject({"siren": "732829320", "year": 2025}) == Subject("siren", "732829320")
    assert routes[("POST", "/cfp/attestations/batch")].bulk


# --- one attestation -------------------------------------------------------------------------


async def test_attestation_found_carries_the_facts_and_provenance(
    session: Session, connect: Connect, signer: Es256Signer
) -> None:
    account = create_account(session)
    create_cfp_payment(
        session,
        account,
        year=2025,
        base="48250.00",
        rate="0.100",
        amount_due="48.25",
        payment_date=dt.date(2026, 2, 25),
        fund="AGEFICE",
    )
    loaded = dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC)
    create_ingestion_run(session, "cfp", loaded)
    # A later load of another dataset must not make the CFP answer look fresher than it is.
    create_ingestion_run(session, "turnover", loaded + dt.timedelta(days=3))
    session.commit()

    async with connect() as ctx:
        disclosure = await get_attestation(siren=account.siren, year=2025, ctx=ctx)

    body = disclosure.body
    assert isinstance(body, CfpAttestationAnswer)
    assert (body.siren, body.year, body.fund) == (account.siren, 2025, "AGEFICE")
    assert (body.base, body.rate) == (Decimal("48250.00"), Decimal("0.100"))
    assert (body.amount_due, body.amount_paid) == (Decimal("48.25"), Decimal("48.25"))
    assert body.payment_date == dt.date(2026, 2, 25)
    assert body.fully_paid is True
    assert body.source == "URSSAF"
    assert body.as_of == loaded
    assert list(disclosure.subjects) == [Subject("siren", account.siren)]
    # What leaves is the JSON the pipeline writes: amounts as exact decimal strings.
    sent = json.loads(body.model_dump_json())
    assert sent["amount_due"] == "48.25"
    assert sent["base"] == "48250.00"
    assert set(sent) == set(CfpAttestationAnswer.model_fields)
    CfpAttestationAnswer.model_validate(sent)


async def test_partly_paid_contribution_is_not_fully_paid(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_cfp_payment(session, account, year=2024, amount_due="120.60", amount_paid="120.59")
    other = create_account(session)
    create_cfp_payment(
        session, other, year=2024, amount_due="120.60", amount_paid="0", payment_date=None
    )
    over = create_account(session)
    create_cfp_payment(session, over, year=2024, amount_due="10.00", amount_paid="12.00")
    session.commit()

    async with connect() as ctx:
        partly = (await get_attestation(siren=account.siren, year=2024, ctx=ctx)).body
        unpaid = (await get_attestation(siren=other.siren, year=2024, ctx=ctx)).body
        overpaid = (await get_attestation(siren=over.siren, year=2024, ctx=ctx)).body

    assert partly.fully_paid is False
    assert unpaid.fully_paid is False
    assert unpaid.payment_date is None
    assert overpaid.fully_paid is True
    assert _payload(unpaid.attestation_jws)["payment_date"] is None


async def test_unknown_siren_is_subject_unknown(session: Session, connect: Connect) -> None:
    create_account(session)
    session.commit()
    async with connect() as ctx:
        with pytest.raises(SubjectNotFound) as caught:
            await get_attestation(siren=new_siren(), year=2024, ctx=ctx)
    assert caught.value.code == "subject.unknown"
    assert caught.value.status == 404


async def test_year_without_contribution_is_reported_as_such(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_cfp_payment(session, account, year=2023)
    session.commit()
    async with connect() as ctx:
        with pytest.raises(SubjectNotFound) as caught:
            await get_attestation(siren=account.siren, year=2024, ctx=ctx)
    assert caught.value.code == "cfp.no_contribution_for_year"


@pytest.mark.parametrize("year", [1999, 0, -1, TODAY.year + 1, 99999])
async def test_year_out_of_range_is_refused(session: Session, connect: Connect, year: int) -> None:
    account = create_account(session)
    session.commit()
    async with connect() as ctx:
        with pytest.raises(InvalidRequest) as caught:
            await get_attestation(siren=account.siren, year=year, ctx=ctx)
    assert caught.value.code == "year.invalid"
    assert caught.value.status == 422


async def test_bounds_of_the_year_range_are_accepted(session: Session, connect: Connect) -> None:
    account = create_account(session)
    create_cfp_payment(session, account, year=2000)
    create_cfp_payment(session, account, year=TODAY.year)
    session.commit()
    async with connect() as ctx:
        assert (await get_attestation(siren=account.siren, year=2000, ctx=ctx)).body.year == 2000
        current = await get_attestation(siren=account.siren, year=TODAY.year, ctx=ctx)
    assert current.body.year == TODAY.year


async def test_without_a_signer_the_answer_is_a_clear_503(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    create_cfp_payment(session, account, year=2024)
    session.commit()
    async with connect(services={}) as ctx:
        with pytest.raises(UpstreamUnavailable) as caught:
            await get_attestation(siren=account.siren, year=2024, ctx=ctx)
    assert caught.value.code == "attestation.signer_unavailable"


# --- the signed attestation --------------------------------------------------------------


async def test_attestation_jws_verifies_offline_with_independent_libraries(
    session: Session, connect: Connect, signer: Es256Signer
) -> None:
    account = create_account(session)
    create_cfp_payment(
        session, account, year=2025, amount_due="30.00", amount_paid="12.50", fund="FAFCEA"
    )
    session.commit()
    async with connect() as ctx:
        body = (await get_attestation(siren=account.siren, year=2025, ctx=ctx)).body

    header = json.loads(_b64decode(body.attestation_jws.split(".")[0]))
    assert header == {"alg": "ES256", "kid": signer.kid, "typ": ATTESTATION_TYP}

    claims = _verify_with_pyjwt(body.attestation_jws, signer)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == account.siren
    assert claims["iat"] == int(dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC).timestamp())
    assert len(claims["jti"]) == 32
    assert {key: claims[key] for key in ("year", "fund", "amount_due", "amount_paid")} == {
        "year": 2025,
        "fund": "FAFCEA",
        "amount_due": "30.00",
        "amount_paid": "12.50",
    }
    assert claims["base"] == str(body.base)
    assert claims["rate"] == str(body.rate)
    assert claims["payment_date"] == body.payment_date.isoformat() if body.payment_date else None
    assert claims["fully_paid"] is False

    verifier = jwcrypto_jws.JWS()
    verifier.deserialize(body.attestation_jws)
    verifier.verify(jwcrypto_jwk.JWK(**signer.public_jwk()))
    assert json.loads(verifier.payload)["sub"] == account.siren


async def test_changing_one_byte_of_the_payload_breaks_the_signature(
    session: Session, connect: Connect, signer: Es256Signer
) -> None:
    account = create_account(session)
    create_cfp_payment(session, account, year=2025, amount_due="48.25", amount_paid="0")
    session.commit()
    async with connect() as ctx:
        token = (
            await get_attestation(siren=account.siren, year=2025, ctx=ctx)
        ).body.attestation_jws

    header, payload, signature = token.split(".")
    raw = bytearray(_b64decode(payload))
    # A fund forging "paid": turn the first digit of amount_paid ("0") into "9".
    position = raw.index(b'"amount_paid":"0') + len(b'"amount_paid":"')
    raw[position] = ord("9")
    forged = ".".join((header, _b64encode(bytes(raw)), signature))
    assert _payload(forged)["amount_paid"] == "9.00"

    _verify_with_pyjwt(token, signer)  # the original still verifies
    with pytest.raises(jwt.InvalidSignatureError):
        _verify_with_pyjwt(forged, signer)
    verifier = jwcrypto_jws.JWS()
    verifier.deserialize(forged)
    with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
        verifier.verify(jwcrypto_jwk.JWK(**signer.public_jwk()))


async def test_a_signature_from_another_key_does_not_verify(
    session: Session, connect: Connect, signer: Es256Signer
) -> None:
    account = create_account(session)
    create_cfp_payment(session, account, year=2025)
    session.commit()
    impostor = Es256Signer(kid=signer.kid)
    async with connect(services={"attestation_signer": impostor}) as ctx:
        token = (
            await get_attestation(siren=account.siren, year=2025, ctx=ctx)
        ).body.attestation_jws
    with pytest.raises(jwt.InvalidSignatureError):
        _verify_with_pyjwt(token, signer)


# --- batches -------------------------------------------------------------------------------


def _batch(*items: tuple[str, int]) -> CfpBatchRequest:
    return CfpBatchRequest(items=[CfpBatchItem(siren=siren, year=year) for siren, year in items])


async def test_batch_answers_each_item_on_its_own(
    session: Session, connect: Connect, signer: Es256Signer
) -> None:
    paid = create_account(session)
    create_cfp_payment(session, paid, year=2024, fund="FIF-PL")
    create_cfp_payment(session, paid, year=2025, fund="FIF-PL", amount_paid="0")
    without_year = create_account(session)
    create_cfp_payment(session, without_year, year=2022)
    unknown = new_siren()
    bad_checksum = paid.siren[:-1] + str((int(paid.siren[-1]) + 1) % 10)
    nir_typed_by_mistake = new_nir()
    session.commit()
    spaced = f"{paid.siren[:3]} {paid.siren[3:6]} {paid.siren[6:]}"

    request = _batch(
        (paid.siren, 2024),
        (unknown, 2024),
        (without_year.siren, 2024),
        (bad_checksum, 2024),
        (nir_typed_by_mistake, 2024),
        ("", 2024),
        (paid.siren, 1999),
        (spaced, 2025),
        (paid.siren, 2024),
    )
    async with connect() as ctx:
        disclosure = await batch_attestations(body=request, ctx=ctx)

    answer = disclosure.body
    assert isinstance(answer, CfpBatchAnswer)
    outcomes = [(item.index, item.outcome, item.code) for item in answer.items]
    assert outcomes == [
        (0, "found", None),
        (1, "not_found", "subject.unknown"),
        (2, "not_found", "cfp.no_contribution_for_year"),
        (3, "invalid_identifier", "siren.bad_checksum"),
        (4, "invalid_identifier", "siren.malformed"),
        (5, "invalid_identifier", "siren.malformed"),
        (6, "invalid_year", "year.invalid"),
        (7, "found", None),
        (8, "found", None),
    ]
    assert (answer.found, answer.not_found, answer.invalid) == (3, 2, 4)
    first, spaced_item = answer.items[0], answer.items[7]
    assert first.attestation is not None
    assert first.attestation.fund == "FIF-PL"
    assert spaced_item.siren == paid.siren
    assert spaced_item.attestation is not None
    assert spaced_item.attestation.fully_paid is False
    assert all(item.attestation is None for item in answer.items if item.outcome != "found")
    # Only the person whose data leaves is a subject, once however often they were asked.
    assert list(disclosure.subjects) == [Subject("siren", paid.siren)]
    # An invalid identifier is never echoed: it may be a NIR typed in the wrong field.
    sent = answer.model_dump_json()
    assert nir_typed_by_mistake not in sent
    assert bad_checksum not in sent
    assert [item.siren for item in answer.items[3:6]] == [None, None, None]
    # Each found item carries its own signed attestation.
    tokens = [item.attestation.attestation_jws for item in answer.items if item.attestation]
    assert len({_payload(token)["jti"] for token in tokens}) == 3
    for token in tokens:
        assert _verify_with_pyjwt(token, signer)["sub"] == paid.siren
    CfpBatchAnswer.model_validate(json.loads(sent))


async def test_batch_with_nothing_valid_sends_no_query_for_data(
    session: Session, connect: Connect, statements: list[str]
) -> None:
    async with connect() as ctx:
        disclosure = await batch_attestations(
            body=_batch(("12345678", 2024), ("732829320", 1990)), ctx=ctx
        )
    assert [item.outcome for item in disclosure.body.items] == [
        "invalid_identifier",
        "invalid_year",
    ]
    assert disclosure.subjects == []
    assert not any("cfp_payment" in statement for statement in statements)


async def test_empty_batch_answers_empty(connect: Connect) -> None:
    async with connect() as ctx:
        disclosure = await batch_attestations(body=CfpBatchRequest(items=[]), ctx=ctx)
    assert disclosure.body.items == []
    assert disclosure.subjects == []


async def test_batch_over_the_limit_is_413_before_anything_else(
    connect: Connect, statements: list[str]
) -> None:
    # Invalid items and no signer: the count must still be the first thing checked.
    request = CfpBatchRequest.model_validate(
        {"items": [{"siren": "x", "year": 1}] * (MAX_BATCH_ITEMS + 1)}
    )
    async with connect(services={}) as ctx:
        with pytest.raises(TooManyItems) as caught:
            await batch_attestations(body=request, ctx=ctx)
    assert caught.value.status == 413
    assert caught.value.code == "batch.too_many_items"
    assert caught.value.extra == {"max_items": MAX_BATCH_ITEMS}
    assert statements == []


def test_batch_schema_does_not_cap_the_list() -> None:
    # A max_length in the schema would turn "too many" into a generic 422 before the
    # operation could answer 413 batch.too_many_items.
    items = [{"siren": "732829320", "year": 2024}] * (MAX_BATCH_ITEMS + 1)
    assert len(CfpBatchRequest.model_validate({"items": items}).items) == MAX_BATCH_ITEMS + 1


def _seed_accounts_with_cfp(session: Session, count: int, year: int) -> list[str]:
    sirens = [new_siren() for _ in range(count)]
    session.execute(
        insert(Account),
        [
            {
                "siren": siren,
                "nir": new_nir(),
                "category": "commercant",
                "regime": "micro",
                "affiliation_date": dt.date(2020, 1, 1),
            }
            for siren in sirens
        ],
    )
    ids = {siren: id_ for siren, id_ in session.execute(select(Account.siren, Account.id))}
    session.execute(
        insert(CfpPayment),
        [
            {
                "account_id": ids[siren],
                "year": year,
                "base": Decimal(10_000 + index),
                "rate": Decimal("0.100"),
                "amount_due": Decimal(10_000 + index) / 1000,
                "amount_paid": Decimal(10_000 + index) / 1000,
                "payment_date": dt.date(year + 1, 2, 1),
                "fund": "AGEFICE",
            }
            for index, siren in enumerate(sirens)
        ],
    )
    session.commit()
    return sirens


async def test_batch_of_ten_thousand_is_answered_in_few_queries(
    session: Session, connect: Connect, signer: Es256Signer, statements: list[str]
) -> None:
    sirens = _seed_accounts_with_cfp(session, MAX_BATCH_ITEMS - 100, 2024)
    unknown = [new_siren() for _ in range(50)]
    # 50 known people asked about a year they have no contribution for.
    asked = [(siren, 2024) for siren in sirens] + [(s, 2024) for s in unknown]
    asked += [(siren, 2023) for siren in sirens[:50]]
    assert len(asked) == MAX_BATCH_ITEMS
    request = _batch(*asked)

    async with connect() as ctx:
        disclosure = await batch_attestations(body=request, ctx=ctx)

    answer = disclosure.body
    assert len(answer.items) == MAX_BATCH_ITEMS
    assert (answer.found, answer.not_found, answer.invalid) == (len(sirens), 100, 0)
    assert {subject.identifier for subject in disclosure.subjects} == set(sirens)
    assert len(disclosure.subjects) == len(sirens)
    assert all(subject.kind == "siren" for subject in disclosure.subjects)
    assert signer.signed == len(sirens)
    for index, (siren, year) in enumerate(asked):
        item = answer.items[index]
        assert (item.index, item.siren, item.year) == (index, siren, year)
        if index < len(sirens):
            assert item.outcome == "found"
            assert isinstance(item.attestation, CfpAttestation)
            assert item.attestation.base == Decimal(10_000 + index)
            assert _payload(item.attestation.attestation_jws)["sub"] == siren
        elif index < len(sirens) + 50:
            assert (item.outcome, item.code) == ("not_found", "subject.unknown")
        else:
            assert (item.outcome, item.code) == ("not_found", "cfp.no_contribution_for_year")
    for item in answer.items[:: MAX_BATCH_ITEMS // 20]:
        if item.attestation is not None:
            _verify_with_pyjwt(item.attestation.attestation_jws, signer)
    # One query per chunk of 1,000 SIRENs (accounts and their CFP rows together) and one for
    # the provenance: never one per item.
    data_queries = [s for s in statements if "cfp_payment" in s]
    assert len(data_queries) == 10
    assert len(statements) <= 12
