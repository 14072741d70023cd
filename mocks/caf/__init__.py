"""Mock CAF (family benefits): follows the status feed and reads quarterly turnover.

CAF pays benefits (RSA, prime d'activité) computed on quarterly resources. Instead of asking
micro-entrepreneurs to declare their turnover a second time, it reads what they declared to
URSSAF, and it follows the flow of affiliations and radiations that CNAM already receives.
Run it with ``python -m mocks.caf --help``.
"""

from mocks.common.profile import PartnerProfile

PROFILE = PartnerProfile(
    name="CAF",
    kind="caf",
    role="family benefits",
    siret="19750011900015",
    recipient="19750011900023",
    scopes=("status:feed", "turnover:read"),
    purpose="prestations-familiales",
)

__all__ = ["PROFILE"]
