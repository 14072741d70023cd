"""Mock Pôle emploi (unemployment benefits): monthly turnover, ACRE proofs, consents.

Job seekers who create a business declare their turnover every month to Pôle emploi, which
reduces their benefit accordingly; Pôle emploi reads it from URSSAF instead. It also reads
the ACRE decisions URSSAF took on its own evidence. Its support for business creators rests
on the person's consent: it records that consent at the gateway before asking, and withdraws
it when the person does. Run it with ``python -m mocks.pole_emploi --help``.

Not to be confused with :mod:`mocks.pole_emploi_api`, the job-seeker API Pôle emploi offers
to URSSAF (the other direction of the exchange).
"""

from mocks.common.profile import PartnerProfile

PROFILE = PartnerProfile(
    name="Pôle emploi",
    kind="pole-emploi",
    role="unemployment benefits",
    siret="19750012700018",
    recipient="19750012700026",
    scopes=("turnover:read", "acre:read", "consent:write"),
    purpose="indemnisation-chomage",
)
# Support to business creators: the legal basis is the person's consent.
CONSENT_PURPOSE = "accompagnement-createur"
CONSENT_DAYS = 180

__all__ = ["CONSENT_DAYS", "CONSENT_PURPOSE", "PROFILE"]
