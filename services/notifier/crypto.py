"""Encryption of channel secrets at rest: AES-256-GCM with keys derived by HKDF-SHA256 from master keys.

``NOTIFIER_SECRET_KEY`` holds one or more master keys, comma-separated. The first encrypts; every one
decrypts. Each ciphertext carries the id of the key that made it (``v2:<key id>:<base64>``), so a
rotation is: put the new key first, keep the old ones after it, restart; the maintenance pass
re-encrypts every stored secret under the new key (:func:`SecretBox.is_current`); then drop the old
keys. Values written before HKDF (``v1:``) still decrypt and are re-encrypted the same way.

A wrong key or a tampered value fails authentication instead of decrypting to garbage.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_AAD = b"postsales-notifier-channel-secret"
_HKDF_SALT = b"postsales-notifier"
_HKDF_INFO = b"channel-secret-encryption/v2"


@dataclass(frozen=True)
class MasterKey:
    """Input key material, and what the pre-HKDF (``v1``) scheme derived its key from."""

    material: bytes
    legacy: bytes


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info).derive(material)


def key_id(material: bytes) -> str:
    """A short public id of a master key (derived separately, so it reveals nothing of the encryption key)."""
    return _hkdf(material, b"key-id").hex()[:12]


class SecretBox:
    def __init__(self, keys: list[MasterKey]) -> None:
        if not keys:
            raise ValueError("at least one master key is needed")
        self._keys = {key_id(k.material): AESGCM(_hkdf(k.material, _HKDF_INFO)) for k in keys}
        self._current = key_id(keys[0].material)
        self._legacy = [AESGCM(hashlib.sha256(b"notifier-secret-enc" + k.legacy).digest()) for k in keys]

    @property
    def current_key_id(self) -> str:
        return self._current

    def encrypt(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        ct = self._keys[self._current].encrypt(nonce, plaintext.encode(), _AAD)
        return f"v2:{self._current}:" + base64.urlsafe_b64encode(nonce + ct).decode()

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is encrypted under the first (current) key."""
        return token.startswith(f"v2:{self._current}:")

    def decrypt(self, token: str) -> str:
        version, _, rest = token.partition(":")
        if version == "v2":
            kid, _, body = rest.partition(":")
            aead = self._keys.get(kid)
            if aead is None:
                raise ValueError(f"secret was encrypted with key {kid}, which NOTIFIER_SECRET_KEY no longer lists")
            candidates = [aead]
        elif version == "v1":
            body, candidates = rest, self._legacy
        else:
            raise ValueError("unknown secret encoding")
        raw = base64.urlsafe_b64decode(body)
        for aead in candidates:
            try:
                return aead.decrypt(raw[:12], raw[12:], _AAD).decode()
            except InvalidTag:
                continue
        raise ValueError("secret does not decrypt with the configured keys (NOTIFIER_SECRET_KEY changed?)")


def load_keys(configured: str | None, data_dir: Path) -> list[MasterKey]:
    """The configured master keys (comma-separated, first = current), or one kept in
    ``<data_dir>/notifier-secret.key`` (created once, mode 0600)."""
    if configured:
        parts = [p.strip() for p in configured.split(",") if p.strip()]
        return [MasterKey(material=p.encode(), legacy=hashlib.sha256(p.encode()).digest()) for p in parts]
    path = data_dir / "notifier-secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raw = bytes.fromhex(path.read_text().strip())
        return [MasterKey(material=raw, legacy=raw)]
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    return [MasterKey(material=key, legacy=key)]
