"""Encryption at rest of the gateway's own secrets (private signing keys, HMAC keys).

The database never holds a private key in clear: a stolen dump alone signs nothing and
de-pseudonymises nothing. The master key comes from ``GATEWAY_MASTER_KEY`` or, on the embedded
default, from a file created once under the var directory, readable by its owner only.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from gateway.settings import Settings


class SecretUnreadableError(RuntimeError):
    """A stored secret does not open with this deployment's master key."""


def _master_key_file(var_dir: Path) -> bytes:
    path = var_dir / "master.key"
    if path.exists():
        return path.read_bytes().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: if two processes race on first start, one creates the file and both read it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def cipher(settings: Settings) -> Fernet:
    if settings.master_key is not None:
        return Fernet(settings.master_key.get_secret_value().encode())
    return Fernet(_master_key_file(settings.var_dir))


def encrypt(settings: Settings, plaintext: bytes) -> str:
    return cipher(settings).encrypt(plaintext).decode()


def decrypt(settings: Settings, token: str) -> bytes:
    try:
        return cipher(settings).decrypt(token.encode())
    except InvalidToken as exc:
        raise SecretUnreadableError(
            "a stored secret does not open with this master key: check GATEWAY_MASTER_KEY"
        ) from exc
