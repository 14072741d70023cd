"""ACRE proofs: decided on Pôle emploi's job-seeker evidence; one module per version.

``pole_emploi`` is the upstream client, ``decision`` the rules; versions build on both.
"""

from connectors.acre import v1

__all__ = ["v1"]
