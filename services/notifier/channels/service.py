"""Channels: validation, secrets, creation, deletion and test sends."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.channels import repository
from services.notifier.channels.schemas import ChannelCreated, ChannelIn, ChannelOut, SmtpOut, TestResult
from services.notifier.crypto import SecretBox
from services.notifier.models import Channel, Delivery
from services.notifier.senders import SendError, dispatch, effective_smtp, render_payload
from services.notifier.settings import Settings
from services.notifier.templates import render_message
from shared.db import utcnow
from shared.errors import Conflict, Unprocessable

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
    if not parts.hostname or not _HOST_RE.match(parts.netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0] or "x"):
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "has an invalid port"
    return None


def validate(body: ChannelIn) -> None:
    """422 with every problem in the channel config, by field."""
    errors: list[dict[str, Any]] = []

    def err(field: str, msg: str) -> None:
        errors.append({"loc": ["body", *field.split(".")], "msg": msg})

    if body.kind in ("webhook", "slack"):
        if not body.url:
            err("url", f"a {body.kind} channel needs a url")
        elif (problem := check_url(body.url)) is not None:
            err("url", problem)
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


async def create(session: AsyncSession, body: ChannelIn, box: SecretBox, settings: Settings) -> ChannelCreated:
    validate(body)
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
    session.add(channel)
    await session.flush()
    return ChannelCreated(**to_out(channel, settings).model_dump(), secret=secret)


async def delete(session: AsyncSession, channel: Channel) -> None:
    users = await repository.rules_using(session, channel.id)
    if users:
        raise Conflict(f"channel is used by rules: {', '.join(sorted(users))}; change them first",
                       rules=sorted(users))
    now = utcnow()
    await session.execute(
        update(Delivery).where(Delivery.channel_id == channel.id, Delivery.status.in_(("pending", "sending")))
        .values(status="dead", last_error="channel deleted", claimed_until=None, updated_at=now))
    await session.delete(channel)
    await session.flush()


async def test_send(channel: Channel, box: SecretBox, settings: Settings, client: httpx.AsyncClient) -> TestResult:
    lang = channel.lang or settings.default_lang
    message = render_message(lang=lang, reason="test", summary="test", context={"link": ""})
    payload = render_payload(channel.kind, message, {"test": True, "channel": channel.name}, "alert.test")
    secret = box.decrypt(channel.secret_enc) if channel.secret_enc else None
    started = time.perf_counter()
    try:
        code = await dispatch(kind=channel.kind, config=channel.config, secret=secret, payload=payload,
                              msg_id="msg_test_" + uuid.uuid4().hex, settings=settings, client=client)
        return TestResult(ok=True, status_code=code, duration_ms=int((time.perf_counter() - started) * 1000))
    except SendError as exc:
        return TestResult(ok=False, status_code=exc.status_code, error=str(exc),
                          duration_ms=int((time.perf_counter() - started) * 1000))
