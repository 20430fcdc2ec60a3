"""Bearer-token auth from ``POSTSALES_API_KEYS``: tokens (plain or ``sha256:<hex>``) map to scopes.

A missing or unknown token is 401, a known token without the scope is 403. Tokens are compared
by their SHA-256 digest in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Forbidden, Unauthorized
from shared.settings import ApiKey


@dataclass(frozen=True)
class Principal:
    """Who is calling: an opaque key id (a digest prefix, safe to log) and the granted scopes."""

    key_id: str
    scopes: frozenset[str]
    owner: str | None = None

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


class KeyStore:
    """The configured API keys, indexed by SHA-256 digest."""

    def __init__(self, keys: Mapping[str, ApiKey | list[str]]) -> None:
        self._digests: list[tuple[bytes, frozenset[str], str | None]] = []
        for token, entry in keys.items():
            key = entry if isinstance(entry, ApiKey) else ApiKey(scopes=entry)
            if token.startswith("sha256:"):
                digest = bytes.fromhex(token.removeprefix("sha256:"))
            else:
                digest = hashlib.sha256(token.encode()).digest()
            self._digests.append((digest, frozenset(key.scopes), key.owner))

    def authenticate(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        # Compare against every key so timing does not reveal which one (or whether one) matched.
        for candidate, scopes, owner in self._digests:
            if hmac.compare_digest(candidate, digest):
                found = Principal(key_id=digest.hex()[:12], scopes=scopes, owner=owner)
        return found


bearer = HTTPBearer(auto_error=False, description="A token from POSTSALES_API_KEYS")


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    store: KeyStore = request.app.state.keystore
    principal = store.authenticate(credentials.credentials)
    if principal is None:
        raise Unauthorized("unknown bearer token")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def actor_of(principal: Principal, given: str | None = None) -> str:
    """Who acted, as recorded in histories and events: the name given in the request, else the
    calling key's opaque id (``key:<id>``)."""
    return given or f"key:{principal.key_id}"


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets the request through only with ``scope`` (or ``admin``)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"this token lacks the '{scope}' scope")
        return principal

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check
