"""Sending one notification to one channel: signed webhook, Slack incoming webhook, SMTP email."""

from __future__ import annotations

import datetime as dt
import json
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
from standardwebhooks import Webhook

from services.notifier.outbound import MAX_RESPONSE_BYTES, is_blocked

USER_AGENT = "postsales-notifier/0.1"


class SendError(Exception):
    """The target refused or could not be reached; ``status_code`` when it answered; ``permanent``
    when retrying cannot help (e.g. the target is on a refused address)."""

    def __init__(self, message: str, status_code: int | None = None, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.permanent = permanent


def webhook_body(event_type: str, data: dict[str, Any], at: dt.datetime) -> str:
    """The Standard Webhooks payload shape: ``{type, timestamp, data}``."""
    return json.dumps({"type": event_type, "timestamp": at.isoformat(), "data": data},
                      separators=(",", ":"), ensure_ascii=False, default=str)


def signed_headers(secret: str, msg_id: str, body: str, now: dt.datetime) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


def slack_blocks(message: dict[str, str], fields: dict[str, str]) -> dict[str, Any]:
    """A Slack Block Kit message: header, body, facts, a button back to the account."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message["title"][:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": message["text"][:2900] or " "}},
    ]
    if fields:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"*{k}*: {v}"} for k, v in list(fields.items())[:10]]})
    if message.get("link"):
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": message["link_label"]},
            "url": message["link"]}]})
    return {"text": message["title"], "blocks": blocks}


async def send_http(client: httpx.AsyncClient, url: str, body: str, headers: dict[str, str],
                    timeout: float) -> int:
    """POST ``body``; redirects are not followed (a 3xx is a failure) and at most
    :data:`outbound.MAX_RESPONSE_BYTES` of the answer are read."""
    request = client.build_request("POST", url, content=body.encode(), timeout=timeout, headers={
        "content-type": "application/json", "user-agent": USER_AGENT, **headers})
    try:
        resp = await client.send(request, stream=True, follow_redirects=False)
        try:
            head = b""
            if not 200 <= resp.status_code < 300:
                async for chunk in resp.aiter_raw():
                    head += chunk
                    if len(head) >= MAX_RESPONSE_BYTES:
                        break
        finally:
            await resp.aclose()
    except httpx.TimeoutException:
        raise SendError(f"timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        if is_blocked(exc):
            raise SendError(str(exc), permanent=True) from None
        raise SendError(f"{type(exc).__name__}: {exc}") from None
    if not 200 <= resp.status_code < 300:
        where = f" (redirect to {resp.headers.get('location', '?')[:200]} not followed)" \
            if 300 <= resp.status_code < 400 else ""
        text = head[:200].decode("utf-8", "replace")
        raise SendError(f"HTTP {resp.status_code}{where}: {text}", resp.status_code)
    return resp.status_code


async def send_email(*, smtp: dict[str, Any], password: str | None, to: str, subject: str, text: str,
                     timeout: float) -> None:
    msg = EmailMessage()
    msg["From"] = smtp["from_address"]
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    tls = smtp["tls"]
    try:
        await aiosmtplib.send(
            msg, hostname=smtp["host"], port=smtp["port"], use_tls=tls == "tls", start_tls=tls == "starttls",
            username=smtp.get("username"), password=password, timeout=timeout,
        )
    except aiosmtplib.SMTPResponseException as exc:
        raise SendError(f"SMTP {exc.code}: {exc.message}", exc.code) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from None


def effective_smtp(config: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The channel's SMTP overrides on top of the service's SMTP_* settings."""
    own = config.get("smtp") or {}
    return {
        "host": own.get("host") or settings.smtp_host or "",
        "port": own.get("port") or settings.smtp_port,
        "tls": own.get("tls") or settings.smtp_tls,
        "from_address": own.get("from_address") or settings.smtp_from,
        "username": own.get("username") or settings.smtp_username,
    }


async def dispatch(*, kind: str, config: dict[str, Any], secret: str | None, payload: dict[str, Any],
                   msg_id: str, settings: Any, client: httpx.AsyncClient) -> int:
    """Send one rendered payload; return the target's status code or raise :class:`SendError`."""
    timeout = float(settings.delivery_timeout)
    if kind == "webhook":
        if not secret:
            raise SendError("webhook channel has no signing secret")
        body = payload["body"]
        headers = signed_headers(secret, msg_id, body, dt.datetime.now(dt.UTC))
        return await send_http(client, config["url"], body, headers, timeout)
    if kind == "slack":
        return await send_http(client, config["url"], payload["body"], {}, timeout)
    if kind == "email":
        password = secret or (settings.smtp_password.get_secret_value() if settings.smtp_password else None)
        smtp = effective_smtp(config, settings)
        if not smtp["host"]:
            raise SendError("no SMTP relay: set NOTIFIER_SMTP_HOST or the channel's smtp.host", permanent=True)
        await send_email(smtp=smtp, password=password, to=config["address"],
                         subject=payload["subject"], text=payload["text"], timeout=timeout)
        return 250
    raise SendError(f"unknown channel kind '{kind}'")


def render_payload(kind: str, message: dict[str, str], data: dict[str, Any], event_type: str) -> dict[str, Any]:
    """What a delivery stores: the exact body (webhook, slack) or subject and text (email)."""
    if kind == "webhook":
        return {"body": webhook_body(event_type, {**data, **message}, dt.datetime.now(dt.UTC))}
    if kind == "slack":
        fields = {k: str(data[k]) for k in ("severity", "status", "subject") if data.get(k) is not None}
        return {"body": json.dumps(slack_blocks(message, fields), ensure_ascii=False)}
    return {"subject": message["title"], "text": message["text"]}
