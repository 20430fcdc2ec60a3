"""Outbound HTTP that cannot be turned against the host: no link-local or cloud-metadata targets.

Loopback and private ranges stay allowed (internal receivers are the norm). A target is checked
when a channel is created, and again on every connection: the HTTP client's network backend
resolves the name itself, refuses if any address is blocked, and connects to the address it
checked (no second lookup an attacker's DNS could answer differently). Redirects are never
followed; response bodies are read only up to :data:`MAX_RESPONSE_BYTES`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

MAX_RESPONSE_BYTES = 4096
RESOLVE_TIMEOUT = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
# Cloud instance-metadata endpoints that are not link-local (AWS IPv6, Alibaba, Oracle legacy).
_METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")}
METADATA_NAMES = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.internal", "metadata.packet.net", "metadata.tencentyun.com"})


class BlockedTarget(httpcore.ConnectError):
    """The target resolves to an address outbound calls may not reach."""


def blocked_reason(address: str) -> str | None:
    """Why ``address`` (an IP literal) may not be called, or None when it may."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA_ADDRESSES:
        return f"{address} is a cloud-metadata address"
    if any(ip in net for net in _LINK_LOCAL):
        return f"{address} is a link-local address"
    if ip.is_multicast or ip.is_unspecified:
        return f"{address} is not a unicast host address"
    return None


class Resolver:
    """Name -> addresses through the system resolver. ``overrides`` pins names to addresses: the seam
    tests use to make a name resolve somewhere (there is no other way to steer DNS in a test)."""

    def __init__(self) -> None:
        self.overrides: dict[str, list[str]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        host = host.strip("[]").lower().rstrip(".")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            return [host]
        except ValueError:
            pass
        if host in self.overrides:
            return list(self.overrides[host])
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(host: str, addresses: Iterable[str], allow_link_local: bool) -> str | None:
    """Why a target named ``host`` resolving to ``addresses`` is refused, or None."""
    if allow_link_local:
        return None
    if host.strip("[]").lower().rstrip(".") in METADATA_NAMES:
        return f"{host} is a cloud-metadata host"
    for address in addresses:
        if (reason := blocked_reason(address)) is not None:
            return f"{host} resolves to {reason}" if host.strip("[]") != address else reason
    return None


async def check_url(url: str, resolver: Resolver, allow_link_local: bool) -> str | None:
    """At channel creation: why ``url``'s host is refused, or None. A name that does not resolve
    (yet) is let through: it is checked again on every send."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if allow_link_local:
        return None
    if (reason := refusal(host, [], allow_link_local)) is not None:
        return reason
    try:
        addresses = await resolver.resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, TimeoutError, UnicodeError):
        return None
    return refusal(host, addresses, allow_link_local)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, resolver: Resolver, allow_link_local: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver
        self._allow = allow_link_local

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self._resolver.resolve(host, port), timeout or RESOLVE_TIMEOUT)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if (reason := refusal(host, addresses, self._allow)) is not None:
            raise BlockedTarget(f"refused: {reason} (NOTIFIER_ALLOW_LINK_LOCAL_TARGETS=false)")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} resolves to no address")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not outbound targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def client(resolver: Resolver, *, allow_link_local: bool, timeout: float) -> httpx.AsyncClient:
    """An HTTP client for notifications: guarded connects, no redirects, no proxies from the environment."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx builds its pool without a way to pass a network backend; swap in one that has ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(), max_connections=None, max_keepalive_connections=20,
        keepalive_expiry=5.0, network_backend=_GuardedBackend(resolver, allow_link_local))
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False,
                             timeout=httpx.Timeout(timeout))


def is_blocked(exc: BaseException) -> bool:
    """Whether an httpx error was our refusal to connect (httpx re-raises it as ``ConnectError``)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, BlockedTarget):
            return True
        cause = cause.__cause__ or cause.__context__
        if cause is exc:
            break
    return False
