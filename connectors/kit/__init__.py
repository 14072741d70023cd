"""What a connector version is made of, and all it may know of the gateway.

A connector version declares a manifest (:class:`ConnectorVersion`) and its operations: plain
async functions taking their typed request parameters and a :class:`ConnectorContext`, and
returning a :class:`Disclosure` (the answer and the subjects whose data it carries). The
gateway's pipeline wraps every operation with authentication, habilitation, purpose, consent,
minimisation and audit; a connector never sees tokens, consents or the audit trail.
"""

from connectors.kit.errors import (
    ConnectorError,
    InvalidRequest,
    SubjectNotFound,
    TooManyItems,
    UpstreamBadAnswer,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connectors.kit.manifest import (
    ConnectorContext,
    ConnectorVersion,
    Deprecation,
    Disclosure,
    Operation,
    Subject,
)
from connectors.kit.types import Nir, Provenance, Siren, YearMonth

__all__ = [
    "ConnectorContext",
    "ConnectorError",
    "ConnectorVersion",
    "Deprecation",
    "Disclosure",
    "InvalidRequest",
    "Nir",
    "Operation",
    "Provenance",
    "Siren",
    "Subject",
    "SubjectNotFound",
    "TooManyItems",
    "UpstreamBadAnswer",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "YearMonth",
]
