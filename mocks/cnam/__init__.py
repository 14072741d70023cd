"""Mock CNAM (health insurance): follows the status feed and reads ACRE decisions.

CNAM already receives the flow of affiliations and radiations of self-employed people; it
reads it from the gateway's feed. For new affiliations it reads the ACRE decision, which
changes the contributions due in the first year. Its habilitation releases the decision and
its period, not which job-seeker criterion was met: CNAM does not need to know whether the
person received unemployment benefit. Run it with ``python -m mocks.cnam --help``.
"""

from mocks.common.profile import PartnerProfile

PROFILE = PartnerProfile(
    name="CNAM",
    kind="cnam",
    role="health insurance",
    siret="19750013500011",
    recipient="19750013500029",
    scopes=("status:feed", "acre:read"),
    purpose="affiliation-assurance-maladie",
)

__all__ = ["PROFILE"]
