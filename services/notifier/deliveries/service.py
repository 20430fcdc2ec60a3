"""Deliveries: rendering notifications into durable rows, and recording each send's outcome."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.alerts import repository as alerts_repo
from services.notifier.channels import repository as channels_repo
from services.notifier.deliveries import repository
from services.notifier.deliveries.schemas import AttemptOut, DeliveryOut
from services.notifier.models import AccountState, Alert, Channel, Delivery, DeliveryAttempt, Rule
from services.notifier.senders import render_payload
from services.notifier.settings import Settings
from services.notifier.templates import ALERT_FIRED, ALERT_RESOLVED, render_message, render_summary
from shared.errors import NotFound
from shared.http import Page


def account_link(settings: Settings, account_id: str) -> str:
    """Where a person opens the account: the console's account page when ``CONSOLE_PUBLIC_URL`` is set
    (people read these links), else the lifecycle API's account resource."""
    aid = quote(account_id, safe="")
    if settings.console_public_url:
        return f"{settings.public_url('console')}/accounts/{aid}"
    return f"{settings.public_url('lifecycle')}/v1/accounts/{aid}"


def links(settings: Settings, alert: Alert) -> dict[str, str]:
    """Every link a notification carries, each built from the public base URL settings."""
    aid = quote(alert.subject, safe="")
    out = {
        "account": account_link(settings, alert.subject),
        "account_api": f"{settings.public_url('lifecycle')}/v1/accounts/{aid}",
        "health": f"{settings.public_url('metrics')}/v1/accounts/{aid}/health",
        "alert": f"{settings.public_url('notifier')}/v1/alerts/{quote(alert.id, safe='')}",
    }
    if settings.console_public_url:
        out["console_alerts"] = f"{settings.public_url('console')}/alerts"
    return out


def template_context(alert: Alert, account: AccountState | None, settings: Settings) -> dict[str, Any]:
    """What notification templates see: the alert, the account as last known, the last event."""
    acct: dict[str, Any] = {"id": alert.subject, "name": None, "owner": None, "stage": None,
                            "health_band": None, "health_score": None}
    if account is not None:
        acct.update(name=account.name, owner=account.owner, stage=account.stage,
                    health_band=account.health_band, health_score=account.health_score)
    event = alert.last_event
    return {
        "rule": alert.rule_name, "severity": alert.severity, "status": alert.status, "subject": alert.subject,
        "labels": alert.labels, "account": acct, "event": event, "data": event.get("data") or {},
        "event_count": alert.event_count, "starts_at": alert.starts_at.isoformat(),
        "link": account_link(settings, alert.subject),
    }


def _event_type(reason: str) -> str:
    # The same names as the alerts topic: one name per concept (``reason`` says firing/repeat/escalation).
    return ALERT_RESOLVED if reason == "resolved" else ALERT_FIRED


async def enqueue(session: AsyncSession, settings: Settings, alert: Alert, rule: Rule | None,
                  channels: list[Channel], reason: str) -> list[Delivery]:
    """One pending delivery per channel, with its body rendered now (so retries send the same bytes)."""
    if not channels:
        return []
    account = await alerts_repo.account(session, alert.subject)
    context = template_context(alert, account, settings)
    now = dt.datetime.now(dt.UTC)
    out = []
    for channel in channels:
        lang = channel.lang or (rule.lang if rule else None) or settings.default_lang
        summary = render_summary(rule.summary if rule else None, lang, context)
        message = render_message(lang=lang, reason=reason, summary=summary, context=context)
        data = {
            "alert_id": alert.id, "rule_id": alert.rule_id, "rule": alert.rule_name, "severity": alert.severity,
            "status": alert.status, "reason": reason, "fingerprint": alert.fingerprint, "labels": alert.labels,
            "subject": alert.subject, "account": context["account"], "summary": summary,
            "event_count": alert.event_count, "starts_at": alert.starts_at.isoformat(),
            "event": alert.last_event, "link": context["link"], "links": links(settings, alert),
        }
        delivery = Delivery(
            id=str(uuid.uuid4()), alert_id=alert.id, channel_id=channel.id, channel_kind=channel.kind,
            reason=reason, status="pending",
            payload=render_payload(channel.kind, message, data, _event_type(reason)),
            attempts=0, next_attempt_at=now, created_at=now, updated_at=now,
        )
        out.append(delivery)
    await repository.add_all(session, out)
    return out


async def rule_channels(session: AsyncSession, rule: Rule) -> list[Channel]:
    """The rule's channels, or the channels flagged default when it names none."""
    if rule.channels:
        return await channels_repo.by_ids(session, list(rule.channels))
    return await channels_repo.defaults(session)


def backoff(settings: Settings, attempts: int) -> float:
    """Exponential backoff with jitter: half the capped delay fixed, half random."""
    delay = float(min(settings.delivery_max_delay, settings.delivery_base_delay * 2 ** max(0, attempts - 1)))
    return delay / 2 + random.uniform(0, delay / 2)


async def list_page(session: AsyncSession, *, alert_id: str | None, channel_id: str | None,
                    status: Literal["pending", "sending", "delivered", "dead"] | None, cursor: str | None,
                    limit: int) -> Page[DeliveryOut]:
    rows, nxt = await repository.page(session, alert_id=alert_id, channel_id=channel_id, status=status,
                                      cursor=cursor, limit=limit)
    logs = await repository.attempts_of(session, [d.id for d in rows])
    return Page[DeliveryOut](items=[to_out(d, logs[d.id]) for d in rows], next_cursor=nxt)


async def get(session: AsyncSession, delivery_id: str) -> DeliveryOut:
    d = await repository.get(session, delivery_id)
    if d is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    return to_out(d, (await repository.attempts_of(session, [d.id]))[d.id])


def to_out(d: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=d.id, alert_id=d.alert_id, channel_id=d.channel_id, channel_kind=d.channel_kind,
        reason=d.reason, status=d.status,
        attempts=d.attempts, next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_error=d.last_error, delivered_at=d.delivered_at, created_at=d.created_at,
        attempt_log=[AttemptOut.model_validate(a) for a in attempts],
    )
