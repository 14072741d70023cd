"""What the training fund does: one batch for all its applicants, every signature verified.

The batch also carries one SIREN mistyped by an applicant: the gateway answers that item as
invalid and every other one normally. Each attestation found is then verified offline, as
the fund will do again when it archives it: the JWS signature with the gateway's published
key (found by its ``kid``), its type, and that the signed claims say what the JSON says.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from mocks.common import api
from mocks.common.client import GatewayClient
from mocks.common.models import CfpAttestation, CfpBatch
from mocks.common.report import ScenarioReport
from mocks.training_fund import ATTESTATION_TYP, PROFILE


def mistyped(siren: str) -> str:
    """The SIREN with its last digit changed: what a typo gives, a bad checksum."""
    return siren[:-1] + str((int(siren[-1]) + 1) % 10)


def verify_attestation(attestation: CfpAttestation, keys: KeySet) -> str | None:
    """None when the signature holds and the signed claims match the answer; else why not."""
    try:
        token = jws.deserialize_compact(attestation.attestation_jws, keys, algorithms=["ES256"])
    except (JoseError, ValueError) as exc:
        return f"signature rejected ({type(exc).__name__})"
    if token.protected.get("typ") != ATTESTATION_TYP:
        return "not a CFP attestation"
    claims = json.loads(token.payload)
    signed = (
        claims.get("sub"),
        claims.get("year"),
        claims.get("fund"),
        Decimal(str(claims.get("amount_due"))),
        Decimal(str(claims.get("amount_paid"))),
        claims.get("fully_paid"),
    )
    shown = (
        attestation.siren,
        attestation.year,
        attestation.fund,
        attestation.amount_due,
        attestation.amount_paid,
        attestation.fully_paid,
    )
    return None if signed == shown else "signed claims differ from the answer"


def _batch(batch: CfpBatch) -> str:
    paid = Counter(
        "fully paid" if item.attestation.fully_paid else "partly or not paid"
        for item in batch.items
        if item.attestation is not None
    )
    codes = Counter(item.code for item in batch.items if item.code)
    text = (
        f"{batch.found} found ({paid['fully paid']} fully paid, "
        f"{paid['partly or not paid']} partly or not paid), "
        f"{batch.not_found} not found, {batch.invalid} invalid"
    )
    if codes:
        text += " — " + ", ".join(f"{count} {code}" for code, count in sorted(codes.items()))
    return text


def run(client: GatewayClient, *, sirens: Sequence[str], year: int) -> ScenarioReport:
    started = time.perf_counter()
    report = ScenarioReport(PROFILE.name, PROFILE.role, purpose=client.purpose)
    published = api.gateway_keys(client)
    report.record(
        published,
        "The gateway's published keys",
        lambda key_set: f"{len(key_set.keys)} public key(s)",
    )
    questions = [(siren, year) for siren in sirens]
    if sirens:
        questions.append((mistyped(sirens[0]), year))
    answer = api.cfp_batch(client, questions)
    report.record(
        answer,
        f"CFP {year} attestations of {len(questions)} applicants, in one batch",
        _batch,
        purpose=client.purpose,
    )
    if published.body is not None and answer.body is not None:
        keys = KeySet.import_key_set({"keys": published.body.keys})
        found = [item.attestation for item in answer.body.items if item.attestation is not None]
        failures = [
            reason for attestation in found if (reason := verify_attestation(attestation, keys))
        ]
        report.check(
            "Verify every attestation's signature",
            passed=not failures,
            received=(
                f"{len(found)} of {len(found)} signatures valid, claims match the answers"
                if not failures
                else f"{len(failures)} of {len(found)} rejected: {failures[0]}"
            ),
        )
    report.seconds = time.perf_counter() - started
    return report
