"""Deliveries: rendering notifications into durable rows, and recording each send's outcome."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.channels import repository as channels_repo
from services.notifier.models import AccountState, Alert, Channel, Delivery, DeliveryAttempt, Rule
from services.notifier.senders import render_payload
from services.notifier.settings import Settings
from services.notifier.templates import render_message, render_summary


def account_link(settings: Settings, account_id: str) -> str:
    return f"{settings.lifecycle_public_url.rstrip('/')}/v1/accounts/{quote(account_id, safe='')}"


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
    return "alert.resolved" if reason == "resolved" else "alert.firing"


async def enqueue(session: AsyncSession, settings: Settings, alert: Alert, rule: Rule | None,
                  channels: list[Channel], reason: str) -> list[Delivery]:
    """One pending delivery per channel, with its body rendered now (so retries send the same bytes)."""
    if not channels:
        return []
    account = await session.get(AccountState, alert.subject)
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
            "event": alert.last_event,
        }
        delivery = Delivery(
            id=str(uuid.uuid4()), alert_id=alert.id, channel_id=channel.id, channel_kind=channel.kind,
            reason=reason, status="pending",
            payload=render_payload(channel.kind, message, data, _event_type(reason)),
            attempts=0, next_attempt_at=now, created_at=now, updated_at=now,
        )
        session.add(delivery)
        out.append(delivery)
    await session.flush()
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


async def attempts_of(session: AsyncSession, delivery_ids: list[str]) -> dict[str, list[DeliveryAttempt]]:
    out: dict[str, list[DeliveryAttempt]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return out
    stmt = (select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number, DeliveryAttempt.started_at))
    for a in (await session.execute(stmt)).scalars().all():
        out[a.delivery_id].append(a)
    return out
