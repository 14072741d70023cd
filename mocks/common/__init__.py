"""What the mock partners share: the OAuth client, the gateway client, typed answers, reports.

Like any outside partner, the mocks import nothing of the gateway: they know it only through
HTTP, its published metadata and its documentation.
"""

from mocks.common.auth import PrivateKeyJwt, StaticBearer, TokenError, load_private_key
from mocks.common.client import Answer, GatewayClient
from mocks.common.profile import PartnerProfile
from mocks.common.report import ScenarioReport, Step, print_report, render

__all__ = [
    "Answer",
    "GatewayClient",
    "PartnerProfile",
    "PrivateKeyJwt",
    "ScenarioReport",
    "StaticBearer",
    "Step",
    "TokenError",
    "load_private_key",
    "print_report",
    "render",
]
