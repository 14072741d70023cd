"""What Pôle emploi does: monthly turnover of job seekers, ACRE proofs, a consent's life.

1. The monthly turnover of job seekers who run a micro-enterprise (by NIR, in the body).
2. The ACRE decision of business creators (by SIREN), with the evidence URSSAF relied on.
3. Support to a business creator, whose legal basis is consent: asked without consent it is
   refused; the adviser records the consent the person signed; asked again it is answered;
   the person withdraws the consent; asked once more it is refused again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

from mocks.common import api
from mocks.common.client import GatewayClient
from mocks.common.dates import months_back, today_in_france
from mocks.common.models import AcreProof, Consent, Turnover
from mocks.common.report import ScenarioReport, mask_nir
from mocks.pole_emploi import CONSENT_DAYS, CONSENT_PURPOSE, PROFILE

SHOWN_MONTHS = 3


def euros(total: object) -> str:
    return f"{total:,.2f} €"


def _monthly(turnover: Turnover) -> str:
    recent = turnover.periods[-SHOWN_MONTHS:]
    shown = ", ".join(
        f"{period.period} {euros(period.total) if period.total is not None else 'not declared'}"
        for period in recent
    )
    return f"declares {turnover.periodicity or 'nothing'}; latest: {shown}"


def _proof(proof: AcreProof) -> str:
    text: str = proof.decision
    if proof.criterion:
        text += f" ({proof.criterion})"
    if proof.exemption:
        text += f"; exempt {proof.exemption.start_date} to {proof.exemption.end_date}"
    return text


def _consent(consent: Consent) -> str:
    return f"consent {consent.id[:8]}… {consent.state}, until {consent.expires_at:%Y-%m-%d}"


def run(
    client: GatewayClient,
    *,
    job_seekers: Sequence[str] = (),
    creators: Sequence[str] = (),
    consenting: str | None = None,
    from_month: str | None = None,
    to_month: str | None = None,
    now: dt.datetime | None = None,
) -> ScenarioReport:
    """``job_seekers`` and ``consenting`` are NIRs, ``creators`` SIRENs."""
    started = time.perf_counter()
    report = ScenarioReport(PROFILE.name, PROFILE.role, purpose=client.purpose)
    if from_month is None or to_month is None:
        from_month, to_month = months_back(today_in_france(), 6)

    for nir in job_seekers:
        answer = api.turnover_by_nir(
            client, nir, from_month=from_month, to_month=to_month, case_reference="PE-ACTU"
        )
        report.record(
            answer,
            f"Monthly turnover of job seeker {mask_nir(nir)}",
            _monthly,
            purpose=client.purpose,
        )

    for siren in creators:
        report.record(
            api.acre_proof(client, siren, case_reference=f"PE-ACRE-{siren}"),
            f"ACRE decision for business creator {siren}",
            _proof,
            purpose=client.purpose,
        )

    if consenting is not None:
        _consent_story(client, report, consenting, from_month, to_month, now)
    report.seconds = time.perf_counter() - started
    return report


def _consent_story(
    client: GatewayClient,
    report: ScenarioReport,
    nir: str,
    from_month: str,
    to_month: str,
    now: dt.datetime | None,
) -> None:
    who = mask_nir(nir)

    def ask(asked: str, *, refused: bool) -> None:
        answer = api.turnover_by_nir(
            client, nir, from_month=from_month, to_month=to_month, purpose=CONSENT_PURPOSE
        )
        report.record(
            answer,
            asked,
            _monthly,
            purpose=CONSENT_PURPOSE,
            expect="refused" if refused else "answered",
            expect_code="consent.missing" if refused else None,
        )

    ask(f"Turnover of {who}, to support the business they create", refused=True)
    moment = now or dt.datetime.now(dt.UTC)
    granted = api.record_consent(
        client,
        nir=nir,
        scopes=["turnover:read"],
        purpose=CONSENT_PURPOSE,
        evidence="Consent form signed at the Pôle emploi agency, scanned in the job seeker's file",
        expires_at=moment + dt.timedelta(days=CONSENT_DAYS),
    )
    report.record(granted, f"Record the consent {who} signed", _consent)
    ask("Same question, now with the person's consent", refused=False)
    if granted.body is None:
        return
    revoked = api.revoke_consent(
        client, granted.body.id, reason="The person withdrew the consent at the agency"
    )
    report.record(revoked, "The person withdraws the consent", _consent)
    ask("Same question after the withdrawal", refused=True)
