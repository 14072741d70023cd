"""Retention: delete whole sealed segments up to a checkpoint, keeping the rest verifiable.

The purge picks the newest checkpoint signed before the cutoff (every record under it was
committed before it was signed, so before the cutoff), walks the segment from the previous
purge's anchor to that checkpoint exactly as ``verify`` does, and refuses if it does not
verify (deleting evidence of tampering would hide it). It then records a signed
``audit_purge`` row naming that checkpoint as the anchor and deletes the subjects, records and
seals of the segment it walked, and the checkpoints before the anchor, and nothing else: a
seal planted at a low position (to have a fresh record deleted as if old) is not in the walked
segment, so its record stays and ``verify`` names the seal. The anchor checkpoint stays:
``verify`` restarts from its head, and the signed purge row shows that the missing start of
the chain was removed by retention, not by someone hiding records.

Why a recorded purge rather than switching the triggers off: the append-only triggers on both
databases let a DELETE through only for rows sealed at or before the anchor of a purge row
(see migration 0003), so the exception is the same on PostgreSQL and SQLite, needs no session
setting any connection could set, and can never reach unsealed or recent rows. On PostgreSQL
the application role has no DELETE privilege at all; the purge runs with the owner's rights.
The whole purge is one transaction, under the sealer's lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from sqlalchemy import Engine, delete, func, insert, select

from gateway.audit.chain import purge_payload
from gateway.audit.models import (
    AuditCheckpoint,
    AuditPurge,
    AuditRecord,
    AuditSeal,
    AuditSubjectEntry,
)
from gateway.audit.sealer import sealing_transaction
from gateway.audit.signing import CheckpointSigner, signature_key_id
from gateway.audit.verify import verify_segment
from gateway.database import utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    cutoff_at: dt.datetime
    anchor_position: int | None
    records_deleted: int
    checkpoints_deleted: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cutoff_at": self.cutoff_at.isoformat()}


def purge_before(engine: Engine, signer: CheckpointSigner, cutoff: dt.datetime) -> PurgeResult:
    """Delete the sealed segments whose checkpoint was signed before ``cutoff``.

    Raises ``ValueError`` for a cutoff that is naive or in the future, and its subclass
    ``TrailNotIntactError`` (nothing deleted) when the segment to delete does not verify.
    """
    if cutoff.tzinfo is None:
        raise ValueError("the purge cutoff must be timezone-aware")
    if cutoff > utcnow():
        raise ValueError("the purge cutoff is in the future")
    nothing = PurgeResult(cutoff, None, 0, 0)
    # Read (or created) before the write lock is taken: SQLite has one writer.
    _ = signer.key_id
    with sealing_transaction(engine, wait=True) as conn:
        if conn is None:  # pragma: no cover - waiting for the lock always yields one
            raise RuntimeError("the sealing lock was not taken")
        anchor = conn.execute(
            select(AuditCheckpoint.position, AuditCheckpoint.head_hash)
            .where(AuditCheckpoint.created_at < cutoff)
            .order_by(AuditCheckpoint.position.desc())
            .limit(1)
        ).first()
        previous = conn.execute(select(func.max(AuditPurge.anchor_position))).scalar() or 0
        if anchor is None or anchor.position <= previous:
            return nothing
        position, head_hash = anchor.position, anchor.head_hash
        start, records = verify_segment(conn, signer, position)
        walked = AuditSeal.position.between(start + 1, position)
        purged_records = select(AuditSeal.record_id).where(walked)
        purged_at = utcnow()
        payload = purge_payload(position, head_hash, records, cutoff, purged_at)
        signature = signer.sign(payload)
        # The purge row comes first: it is what the triggers check to allow the deletes.
        conn.execute(
            insert(AuditPurge).values(
                purged_at=purged_at,
                cutoff_at=cutoff,
                anchor_position=position,
                head_hash=head_hash,
                records_deleted=records,
                key_id=signature_key_id(signature),
                signature=signature,
            )
        )
        conn.execute(
            delete(AuditSubjectEntry).where(AuditSubjectEntry.record_id.in_(purged_records))
        )
        conn.execute(delete(AuditRecord).where(AuditRecord.id.in_(purged_records)))
        conn.execute(delete(AuditSeal).where(walked))
        checkpoints = conn.execute(
            delete(AuditCheckpoint).where(AuditCheckpoint.position.between(start, position - 1))
        ).rowcount
    log.info(
        "audit_purged",
        anchor_position=position,
        head_hash=head_hash,
        records=records,
        checkpoints=checkpoints,
    )
    return PurgeResult(cutoff, position, int(records), int(checkpoints))
