"""Channels: validation, secrets, creation, deletion and test sends."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import outbound
from services.notifier.channels import repository
from services.notifier.channels.schemas import ChannelCreated, ChannelIn, ChannelOut, SmtpOut, TestResult
from services.notifier.crypto import SecretBox
from services.notifier.deliveries import repository as deliveries_repo
from services.notifier.models import Channel
from services.notifier.outbound import Resolver
from services.notifier.senders import SendError, dispatch, effective_smtp, render_payload
from services.notifier.settings import Settings
from services.notifier.templates import TEST_EVENT_TYPE, render_message
from shared.db import utcnow
from shared.errors import Conflict, Unprocessable
from shared.http import Page

log = logging.getLogger("postsales.notifier.channels")

_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-]+$|^\[[0-9A-Fa-f:.]+\]$")


def generate_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str | None:
    if not secret.startswith("whsec_"):
        return "a webhook secret looks like whsec_<base64>"
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return "the part after whsec_ is not valid base64"
    if not 24 <= len(raw) <= 64:
        return "a webhook secret must decode to 24-64 bytes"
    return None


def check_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must be an http(s) URL"
    host = parts.hostname or ""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return "must name a host"
    elif not host or not _HOST_RE.match(host):
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "has an invalid port"
    return None


async def validate(body: ChannelIn, settings: Settings, resolver: Resolver) -> None:
    """422 with every problem in the channel config, by field."""
    errors: list[dict[str, Any]] = []

    def err(field: str, msg: str) -> None:
        errors.append({"loc": ["body", *field.split(".")], "msg": msg})

    if body.kind in ("webhook", "slack"):
        if not body.url:
            err("url", f"a {body.kind} channel needs a url")
        elif (problem := check_url(body.url)) is not None:
            err("url", problem)
        elif (problem := await outbound.check_url(body.url, resolver, settings.allow_link_local_targets)) is not None:
            err("url", f"{problem}; link-local and cloud-metadata targets are refused unless "
                       "NOTIFIER_ALLOW_LINK_LOCAL_TARGETS=true")
        if body.address is not None:
            err("address", f"a {body.kind} channel has no address")
        if body.smtp is not None:
            err("smtp", f"a {body.kind} channel has no smtp settings")
    if body.kind == "webhook" and body.secret is not None and (problem := check_secret(body.secret)):
        err("secret", problem)
    if body.kind != "webhook" and body.secret is not None:
        err("secret", "only webhook channels have a signing secret")
    if body.kind == "email":
        if not body.address:
            err("address", "an email channel needs an address")
        elif not _EMAIL_RE.match(body.address):
            err("address", "not an email address")
        if body.url is not None:
            err("url", "an email channel has no url")
        smtp = body.smtp
        if smtp and smtp.from_address is not None and not _EMAIL_RE.match(smtp.from_address):
            err("smtp.from_address", "not an email address")
        if smtp and smtp.host is not None and not _HOST_RE.match(smtp.host):
            err("smtp.host", "not a host name or address")
        if smtp and smtp.password is not None and not smtp.username:
            err("smtp.username", "a password needs a username")
        if not (smtp and smtp.host) and not settings.smtp_host:
            err("smtp.host", "no SMTP relay is configured: set NOTIFIER_SMTP_HOST (with NOTIFIER_SMTP_PORT, "
                             "NOTIFIER_SMTP_TLS, NOTIFIER_SMTP_FROM and NOTIFIER_SMTP_USERNAME/"
                             "NOTIFIER_SMTP_PASSWORD as your relay needs) on the notifier, or give this channel "
                             "its own smtp {host, port, tls, from_address}")
    if errors:
        raise Unprocessable("; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors),
                            errors=errors)


def to_out(channel: Channel, settings: Settings) -> ChannelOut:
    cfg = channel.config
    smtp = None
    if channel.kind == "email":
        eff = effective_smtp(cfg, settings)
        smtp = SmtpOut(**eff, has_password=channel.secret_enc is not None or settings.smtp_password is not None)
    return ChannelOut(
        id=channel.id, name=channel.name, kind=channel.kind,
        url=cfg.get("url"), address=cfg.get("address"), smtp=smtp,
        lang=channel.lang,
        default=channel.is_default, has_secret=channel.secret_enc is not None,
        created_at=channel.created_at, updated_at=channel.updated_at,
    )


async def list_page(session: AsyncSession, settings: Settings, cursor: str | None, limit: int) -> Page[ChannelOut]:
    rows, nxt = await repository.page(session, cursor=cursor, limit=limit)
    return Page[ChannelOut](items=[to_out(c, settings) for c in rows], next_cursor=nxt)


async def create(session: AsyncSession, body: ChannelIn, box: SecretBox, settings: Settings,
                 resolver: Resolver) -> ChannelCreated:
    await validate(body, settings, resolver)
    if await repository.by_name(session, body.name) is not None:
        raise Conflict(f"a channel named '{body.name}' already exists")
    secret: str | None = None
    stored: str | None = None
    config: dict[str, Any] = {}
    if body.kind in ("webhook", "slack"):
        config["url"] = body.url
    if body.kind == "webhook":
        secret = body.secret or generate_secret()
        stored = box.encrypt(secret)
    if body.kind == "email":
        config["address"] = body.address
        if body.smtp:
            config["smtp"] = body.smtp.model_dump(exclude={"password"}, exclude_none=True)
            if body.smtp.password:
                stored = box.encrypt(body.smtp.password)
    now = utcnow()
    channel = Channel(id=str(uuid.uuid4()), name=body.name, kind=body.kind, config=config, secret_enc=stored,
                      lang=body.lang, is_default=body.default, created_at=now, updated_at=now)
    await repository.add(session, channel)
    return ChannelCreated(**to_out(channel, settings).model_dump(), secret=secret)


async def delete(session: AsyncSession, channel: Channel) -> None:
    users = await repository.rules_using(session, channel.id)
    if users:
        raise Conflict(f"channel is used by rules: {', '.join(sorted(users))}; change them first",
                       rules=sorted(users))
    await deliveries_repo.kill_undelivered_of_channel(session, channel.id, "channel deleted")
    await repository.delete(session, channel)


async def test_send(channel: Channel, box: SecretBox, settings: Settings, resolver: Resolver) -> TestResult:
    lang = channel.lang or settings.default_lang
    message = render_message(lang=lang, reason="test", summary="test", context={"link": ""})
    payload = render_payload(channel.kind, message, {"test": True, "channel": channel.name}, TEST_EVENT_TYPE)
    started = time.perf_counter()
    try:
        secret = box.decrypt(channel.secret_enc) if channel.secret_enc else None
        async with outbound.client(resolver, allow_link_local=settings.allow_link_local_targets,
                                   timeout=settings.delivery_timeout) as client:
            code = await asyncio.wait_for(
                dispatch(kind=channel.kind, config=channel.config, secret=secret, payload=payload,
                         msg_id="msg_test_" + uuid.uuid4().hex, settings=settings, client=client),
                timeout=settings.delivery_timeout + 1)
        return TestResult(ok=True, status_code=code, duration_ms=int((time.perf_counter() - started) * 1000))
    except SendError as exc:
        return TestResult(ok=False, status_code=exc.status_code, error=str(exc),
                          duration_ms=int((time.perf_counter() - started) * 1000))
    except TimeoutError:
        return TestResult(ok=False, error=f"timed out after {settings.delivery_timeout:g}s",
                          duration_ms=int((time.perf_counter() - started) * 1000))
    except ValueError as exc:
        return TestResult(ok=False, error=str(exc), duration_ms=int((time.perf_counter() - started) * 1000))


async def reencrypt_stale(session: AsyncSession, box: SecretBox, limit: int) -> int:
    """Re-encrypt up to ``limit`` stored secrets not under the current key (after a key rotation);
    returns how many. A secret no configured key opens is left as it is (and logged)."""
    done = 0
    for channel in await repository.with_secrets(session):
        if done >= limit:
            break
        token = channel.secret_enc
        if token is None or box.is_current(token):
            continue
        try:
            channel.secret_enc = box.encrypt(box.decrypt(token))
        except ValueError as exc:
            log.error("channel %s: stored secret cannot be re-encrypted: %s", channel.id, exc)
            continue
        channel.updated_at = utcnow()
        done += 1
    await session.flush()
    return done
