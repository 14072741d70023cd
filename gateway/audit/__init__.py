"""The tamper-evident audit trail: every request recorded before its answer, then sealed.

What the rest of the gateway calls:

- ``AuditEntry`` / ``AuditSubject`` (``schemas``): one request and the pseudonymised people
  whose data it carried;
- ``Pseudonymiser`` (``pseudonym``): ``await subject(kind, identifier)`` gives the
  ``AuditSubject`` of a NIR or SIREN under the active key;
- ``AuditWriter`` (``writer``): ``await write(entry)`` returns once the record is committed,
  or raises ``AuditUnavailableError`` (a 503 ``audit.unavailable``) and no data may leave;
- ``audit_runtime`` (``runtime``): starts both, and the sealer loop, in the app's lifespan
  (``app.state.audit``);
- ``run_sealer_once``, ``verify_trail``, ``purge_before``, ``subject_history``: the sealer, the
  verifier, retention and the right of access, also behind ``gateway audit ...``.
"""

from gateway.audit.errors import AuditUnavailableError, CheckpointSignatureError
from gateway.audit.pseudonym import Pseudonymiser
from gateway.audit.purge import PurgeResult, purge_before
from gateway.audit.runtime import AuditRuntime, audit_runtime
from gateway.audit.schemas import AuditEntry, AuditSubject, Outcome, SubjectKind
from gateway.audit.sealer import SealResult, run_sealer_once
from gateway.audit.signing import (
    CheckpointSigner,
    CheckpointVerifier,
    Es256CheckpointSigner,
    KeyStoreCheckpointSigner,
    PinnedKeysVerifier,
    gateway_checkpoint_signer,
)
from gateway.audit.subject import SubjectAccessEntry, identify, subject_history
from gateway.audit.verify import (
    TrailNotIntactError,
    VerificationProblem,
    VerificationReport,
    verify_trail,
)
from gateway.audit.writer import AuditWriter

__all__ = [
    "AuditEntry",
    "AuditRuntime",
    "AuditSubject",
    "AuditUnavailableError",
    "AuditWriter",
    "CheckpointSignatureError",
    "CheckpointSigner",
    "CheckpointVerifier",
    "Es256CheckpointSigner",
    "KeyStoreCheckpointSigner",
    "Outcome",
    "PinnedKeysVerifier",
    "Pseudonymiser",
    "PurgeResult",
    "SealResult",
    "SubjectAccessEntry",
    "SubjectKind",
    "TrailNotIntactError",
    "VerificationProblem",
    "VerificationReport",
    "audit_runtime",
    "gateway_checkpoint_signer",
    "identify",
    "purge_before",
    "run_sealer_once",
    "subject_history",
    "verify_trail",
]
