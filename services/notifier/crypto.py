"""Encryption of channel secrets at rest: AES-256-GCM (``cryptography``) keyed by the service's secret key.

A wrong key or a tampered value fails authentication instead of decrypting to garbage.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_AAD = b"postsales-notifier-channel-secret"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(b"notifier-secret-enc" + key).digest())

    def encrypt(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        ct = self._aead.encrypt(nonce, plaintext.encode(), _AAD)
        return _VERSION + ":" + base64.urlsafe_b64encode(nonce + ct).decode()

    def decrypt(self, token: str) -> str:
        version, _, body = token.partition(":")
        if version != _VERSION:
            raise ValueError("unknown secret encoding")
        raw = base64.urlsafe_b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _AAD).decode()
        except InvalidTag:
            raise ValueError("secret does not decrypt with this key (NOTIFIER_SECRET_KEY changed?)") from None


def load_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, or one kept in ``<data_dir>/notifier-secret.key`` (created once, mode 0600)."""
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    path = data_dir / "notifier-secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    return key
