"""Encryption of channel secrets at rest.

No AEAD library is installed, so this is encrypt-then-MAC from HMAC-SHA256 alone: the keystream is
HMAC(k_enc, nonce || counter) (HMAC as a PRF in counter mode), the tag HMAC(k_mac, nonce || ct).
Keys are derived from the service's secret key; a wrong key or tampered value fails the tag check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

_VERSION = "v1"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._enc = hmac.new(key, b"notifier-secret-enc", hashlib.sha256).digest()
        self._mac = hmac.new(key, b"notifier-secret-mac", hashlib.sha256).digest()

    def _stream(self, nonce: bytes, length: int) -> bytes:
        out = bytearray()
        counter = 0
        while len(out) < length:
            out += hmac.new(self._enc, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
            counter += 1
        return bytes(out[:length])

    def encrypt(self, plaintext: str) -> str:
        data = plaintext.encode()
        nonce = secrets.token_bytes(16)
        ct = bytes(a ^ b for a, b in zip(data, self._stream(nonce, len(data)), strict=True))
        tag = hmac.new(self._mac, nonce + ct, hashlib.sha256).digest()
        return _VERSION + ":" + base64.urlsafe_b64encode(nonce + tag + ct).decode()

    def decrypt(self, token: str) -> str:
        version, _, body = token.partition(":")
        if version != _VERSION:
            raise ValueError("unknown secret encoding")
        raw = base64.urlsafe_b64decode(body)
        nonce, tag, ct = raw[:16], raw[16:48], raw[48:]
        if not hmac.compare_digest(tag, hmac.new(self._mac, nonce + ct, hashlib.sha256).digest()):
            raise ValueError("secret does not decrypt with this key (NOTIFIER_SECRET_KEY changed?)")
        return bytes(a ^ b for a, b in zip(ct, self._stream(nonce, len(ct)), strict=True)).decode()


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
