"""The session cookie: AES-256-GCM over a small JSON document, so the token inside cannot be read or forged.

Starlette's session middleware only signs its cookie (anyone holding the cookie can read it); here the
cookie is ``base64url(nonce || ciphertext)`` with the key derived from ``CONSOLE_SESSION_KEY`` by HKDF.
A visitor who has not signed in still gets a session (no token in it) that carries the CSRF token of the
sign-in form.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_AAD = b"postsales-console-session-v1"
_NONCE = 12


def _new_csrf() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class Session:
    """What the cookie holds. ``token`` is the person's API token (None before sign-in)."""

    csrf: str = field(default_factory=_new_csrf)
    token: str | None = None
    key_id: str | None = None
    owner: str | None = None
    expires: float = 0.0
    flash: list[tuple[str, str]] = field(default_factory=list)

    @property
    def signed_in(self) -> bool:
        return self.token is not None and self.expires > time.time()

    def say(self, kind: str, text: str) -> None:
        """A message for the next page (after a redirect)."""
        self.flash.append((kind, text[:500]))


class SessionBox:
    """Seals and opens sessions with one key."""

    def __init__(self, secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"postsales-console",
                   info=b"session-cookie").derive(secret.encode())
        self._aead = AESGCM(key)

    def seal(self, session: Session) -> str:
        nonce = os.urandom(_NONCE)
        body = json.dumps(asdict(session), separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, body, _AAD)
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, value: str | None) -> Session | None:
        """The session in ``value``; None when absent, tampered with, sealed with another key or malformed."""
        if not value or len(value) > 8192:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            body = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD)
            data: dict[str, Any] = json.loads(body)
            data["flash"] = [tuple(f) for f in data.get("flash", [])]
            return Session(**data)
        except (InvalidTag, ValueError, TypeError, KeyError):
            return None
