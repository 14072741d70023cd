"""The gateway's own signing keys: one current key per use, older ones published while needed.

Uses: ``token`` (OAuth access tokens), ``audit`` (audit checkpoints), ``attestation`` and
``consent`` (documents handed to partners). See :mod:`gateway.keys.store`.
"""

from gateway.keys.models import KeyUse, SigningKey
from gateway.keys.store import ActiveKey, KeyStore, PublicKey

__all__ = ["ActiveKey", "KeyStore", "KeyUse", "PublicKey", "SigningKey"]
