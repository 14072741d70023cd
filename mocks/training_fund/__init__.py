"""Mock training fund (FAFCEA, craftsmen): batches of CFP attestations, signatures checked.

A training fund finances a self-employed person's training only once their contribution to
vocational training (CFP) of the year is paid. The old portal answered one request at a time;
the fund now sends its whole list of applicants in one batch, and keeps each signed
attestation as proof after verifying it with the gateway's published key. Run it with
``python -m mocks.training_fund --help``.
"""

from mocks.common.profile import PartnerProfile

PROFILE = PartnerProfile(
    name="FAFCEA",
    kind="training-fund",
    role="training fund of craftsmen",
    siret="78450014200012",
    recipient="78450014200020",
    scopes=("cfp:read",),
    purpose="financement-formation",
)
ATTESTATION_TYP = "cfp-attestation+jwt"

__all__ = ["ATTESTATION_TYP", "PROFILE"]
