"""The audit trail's exceptions.

- ``AuditUnavailableError`` (a ``ServiceUnavailableError``, 503, code ``audit.unavailable``):
  a record could not be committed in time. The caller must not send any data; rendered by the
  shared problem handler it is already the 503 the client must get.
- ``CheckpointSignatureError`` (``ValueError``): a checkpoint or purge does not verify: its
  ``code`` says which rule it breaks (``bad_signature``: no trusted key made it, or it is no
  compact JWS; ``mismatch``, ``key_mismatch``, ``retired_key``, ``malformed``: see
  ``gateway.audit.signing``).

"""

from __future__ import annotations

from gateway.errors import ServiceUnavailableError


class AuditUnavailableError(ServiceUnavailableError):
    """The audit record was not committed (database failure or timeout): send no data."""

    def __init__(self, reason: str = "the audit record could not be committed") -> None:
        super().__init__(
            "audit.unavailable",
            "The request could not be recorded in the audit trail, so no data was sent. "
            "Retry later.",
            headers={"Retry-After": "5"},
        )
        # Kept apart from ``detail`` so that internal causes never reach the client.
        self.reason = reason


class CheckpointSignatureError(ValueError):
    """A signed checkpoint or purge record does not verify."""

    def __init__(self, message: str, code: str = "bad_signature") -> None:
        super().__init__(message)
        self.code = code
