"""What the partners compute on their side: CAF's quarters, the fund's signature checks, and
the rule that mocks import nothing of ours."""

from __future__ import annotations

import ast
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from joserfc import jws
from joserfc.jwk import ECKey, KeySet

import mocks
from mocks.caf.scenario import quarterly_totals
from mocks.common.dates import months_back
from mocks.common.models import CfpAttestation, Turnover
from mocks.training_fund.scenario import mistyped, verify_attestation


def _turnover(periods: list[tuple[str, str | None]]) -> Turnover:
    return Turnover.model_validate(
        {
            "siren": "732829320",
            "periodicity": "monthly",
            "as_of": None,
            "periods": [
                {"period": period, "declared": total is not None, "total": total}
                for period, total in periods
            ],
        }
    )


def test_caf_regroups_months_into_quarters_and_flags_a_missing_month() -> None:
    turnover = _turnover(
        [
            ("2026-01", "100.00"),
            ("2026-02", "0.00"),
            ("2026-03", "50.50"),
            ("2026-04", "10.00"),
            ("2026-05", None),
            ("2026-06", "10.00"),
        ]
    )

    assert quarterly_totals(turnover) == {"2026-Q1": Decimal("150.50"), "2026-Q2": None}


def test_caf_keeps_quarters_as_declared() -> None:
    turnover = _turnover([("2026-Q1", "900.00"), ("2026-Q2", None)])

    assert quarterly_totals(turnover) == {"2026-Q1": Decimal("900.00"), "2026-Q2": None}


def test_default_ranges_count_months_back_across_a_year() -> None:
    assert months_back(dt.date(2026, 2, 10), 12) == ("2025-03", "2026-02")
    assert months_back(dt.date(2026, 12, 31), 1) == ("2026-12", "2026-12")


def test_a_mistyped_siren_breaks_its_checksum() -> None:
    assert mistyped("732829320") == "732829321"
    assert mistyped("732829329") == "732829320"


def _signed(key: ECKey, claims: dict[str, object], typ: str = "cfp-attestation+jwt") -> str:
    return jws.serialize_compact(
        {"alg": "ES256", "kid": key.kid, "typ": typ}, json.dumps(claims).encode(), key
    )


def _attestation(token: str, **changes: object) -> CfpAttestation:
    fields: dict[str, object] = {
        "siren": "732829320",
        "year": 2025,
        "fund": "FAFCEA",
        "amount_due": "48.25",
        "amount_paid": "48.25",
        "payment_date": "2026-02-25",
        "fully_paid": True,
        "attestation_jws": token,
    }
    fields.update(changes)
    return CfpAttestation.model_validate(fields)


CLAIMS: dict[str, object] = {
    "sub": "732829320",
    "year": 2025,
    "fund": "FAFCEA",
    "amount_due": "48.25",
    "amount_paid": "48.25",
    "fully_paid": True,
}


def test_the_fund_accepts_an_attestation_signed_by_a_published_key() -> None:
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    published = KeySet([ECKey.import_key(key.as_dict(private=False))])

    assert verify_attestation(_attestation(_signed(key, CLAIMS)), published) is None


def test_the_fund_rejects_a_forged_a_mistyped_or_a_contradicting_attestation() -> None:
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    forger = ECKey.generate_key("P-256", private=True)
    forger_token = jws.serialize_compact(
        {"alg": "ES256", "kid": key.kid, "typ": "cfp-attestation+jwt"},
        json.dumps(CLAIMS).encode(),
        forger,
    )
    published = KeySet([ECKey.import_key(key.as_dict(private=False))])

    assert verify_attestation(_attestation(forger_token), published) is not None
    assert verify_attestation(_attestation(_signed(key, CLAIMS, typ="JWT")), published) == (
        "not a CFP attestation"
    )
    shown_more_paid = _attestation(_signed(key, {**CLAIMS, "amount_paid": "10.00"}))
    assert verify_attestation(shown_more_paid, published) == (
        "signed claims differ from the answer"
    )


def test_mocks_import_nothing_of_ours() -> None:
    """The mocks are outside partners: they know the gateway only through HTTP."""
    root = Path(mocks.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(root)}: {name}"
                for name in names
                if name.split(".")[0] in ("gateway", "connectors", "tests")
            ]
    assert offenders == []
