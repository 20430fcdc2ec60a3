"""The alert engine: events -> alerts (by fingerprint), resolution, acknowledgement, and the
notification pass that turns due alerts into deliveries (group_wait, repeat_interval, escalation,
silences, inhibition)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.alerts import repository
from services.notifier.alerts.schemas import AlertOut
from services.notifier.channels import repository as channels_repo
from services.notifier.deliveries import service as deliveries
from services.notifier.models import AccountState, Alert, Rule, Silence
from services.notifier.rules import repository as rules_repo
from services.notifier.settings import Settings
from services.notifier.silences import repository as silences_repo
from services.notifier.templates import ALERT_FIRED, ALERT_RESOLVED, render_summary
from shared.db import utcnow
from shared.errors import Conflict
from shared.events import CloudEvent
from shared.events.conditions import (
    conditions_hold,
    event_context,
    fingerprint,
    group_labels,
    parse_duration,
    seconds,
    type_matches,
)
from shared.events.outbox import Outbox
from shared.http import Page

SOURCE = "/services/notifier"


@dataclass
class Engine:
    """What the engine needs from the running service."""

    settings: Settings
    outbox: Outbox
    wake_deliveries: asyncio.Event


# --- what the notifier remembers about accounts -------------------------------------------------

async def remember_account(session: AsyncSession, event: CloudEvent) -> AccountState | None:
    """Keep the account facts rules can test (``account.health_band`` ...); older events don't win."""
    state = await repository.account(session, event.subject)
    data = event.data
    relevant = event.type in ("postsales.health.changed", "postsales.account.created",
                              "postsales.account.updated", "postsales.account.stage_changed")
    if not relevant:
        return state
    now = utcnow()
    if state is None:
        state = AccountState(account_id=event.subject, updated_at=now)
        await repository.add_account(session, state)
    if event.type == "postsales.health.changed":
        if state.health_at is None or event.time >= state.health_at:
            state.health_band = data.get("new_band")
            score = data.get("new_score")
            state.health_score = float(score) if isinstance(score, int | float) else None
            state.health_at = event.time
    else:
        stage = data.get("to") if event.type == "postsales.account.stage_changed" else data.get("stage")
        # Imported history arrives late: an older stage never overwrites a newer one.
        if stage and (state.stage_at is None or event.time >= state.stage_at):
            state.stage = stage
            state.stage_at = event.time
        if event.type != "postsales.account.stage_changed":
            state.name = data.get("name") or state.name
            state.owner = data.get("owner") or state.owner
    state.updated_at = now
    await session.flush()
    return state


def _account_doc(state: AccountState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"name": state.name, "owner": state.owner, "stage": state.stage,
            "health_band": state.health_band, "health_score": state.health_score}


# --- events -> alerts ----------------------------------------------------------------------------

async def evaluate(session: AsyncSession, engine: Engine, event: CloudEvent) -> None:
    """Apply one domain event: resolve what it resolves, then fire what it matches.

    An event older than ``NOTIFIER_MAX_TRIGGER_AGE`` only updates what the notifier knows about the
    account: imported history neither pages anyone nor closes today's alerts."""
    state = await remember_account(session, event)
    if event.time < utcnow() - engine.settings.max_trigger_age:
        return
    doc = event_context(event, _account_doc(state))
    for rule in await rules_repo.enabled(session):
        for rw in resolvers(rule):
            if type_matches(rw["event_type"], event.type) and conditions_hold(rw.get("conditions") or {}, doc):
                reason = f"resolved by {event.type} ({event.id})"
                if rw.get("scope") == "account":
                    for alert in await repository.active_of_rule_for_subject(session, rule.id, event.subject):
                        await resolve(session, engine, alert, by="auto", reason=reason)
                else:
                    fp = fingerprint(rule.id, group_labels(list(rule.group_by), doc))
                    same = await repository.active_by_fingerprint(session, fp)
                    if same is not None:
                        await resolve(session, engine, same, by="auto", reason=reason)
        if type_matches(rule.event_type, event.type) and conditions_hold(rule.conditions, doc):
            await fire(session, engine, rule, event, doc)


def resolvers(rule: Rule) -> list[dict[str, Any]]:
    """A rule's ``resolve_when``, one object or a list of them, as a list."""
    rw = rule.resolve_when
    if not rw:
        return []
    return [r for r in (rw if isinstance(rw, list) else [rw]) if isinstance(r, dict)]


async def list_page(session: AsyncSession, *, status: str | None, subject: str | None, rule_id: str | None,
                    cursor: str | None, limit: int) -> Page[AlertOut]:
    rows, nxt = await repository.page(session, status=status, subject=subject, rule_id=rule_id,
                                      cursor=cursor, limit=limit)
    return Page[AlertOut](items=[AlertOut.model_validate(a) for a in rows], next_cursor=nxt)


def _last_event(event: CloudEvent) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "source": event.source, "time": event.time.isoformat(),
            "data": event.data}


async def fire(session: AsyncSession, engine: Engine, rule: Rule, event: CloudEvent, doc: dict[str, Any]) -> Alert:
    labels = group_labels(list(rule.group_by), doc)
    fp = fingerprint(rule.id, labels)
    now = utcnow()
    alert = await repository.active_by_fingerprint(session, fp)
    if alert is not None:
        alert.event_count += 1
        alert.last_event = _last_event(event)
        alert.last_event_at = max(alert.last_event_at, event.time)
        alert.updated_at = now
        await session.flush()
        return alert
    context = {**doc, "rule": rule.name, "severity": rule.severity, "labels": labels}
    alert = Alert(
        id=str(uuid.uuid4()), fingerprint=fp, active_key=fp, rule_id=rule.id, rule_name=rule.name,
        severity=rule.severity, status="firing", labels={"alertname": rule.name, "severity": rule.severity, **labels},
        subject=event.subject, summary=render_summary(rule.summary, engine.settings.default_lang, context),
        event_count=1, last_event=_last_event(event), starts_at=event.time, last_event_at=event.time,
        next_notify_at=now + seconds(parse_duration(rule.group_wait)), last_notified_at=None, notify_count=0,
        created_at=now, updated_at=now,
    )
    await repository.add(session, alert)
    await engine.outbox.add(session, _alert_event(alert, ALERT_FIRED, engine.settings))
    return alert


def _alert_event(alert: Alert, type_: str, settings: Settings) -> CloudEvent:
    data: dict[str, Any] = {
        "alert_id": alert.id, "rule": alert.rule_name, "rule_id": alert.rule_id, "severity": alert.severity,
        "fingerprint": alert.fingerprint, "status": alert.status, "labels": alert.labels,
        "summary": alert.summary, "account_id": alert.subject, "starts_at": alert.starts_at.isoformat(),
        "event_type": alert.last_event.get("type"), "link": deliveries.account_link(settings, alert.subject),
    }
    if alert.resolved_at is not None:
        data.update(resolved_at=alert.resolved_at.isoformat(), resolved_by=alert.resolved_by,
                    resolution=alert.resolution)
    return CloudEvent.new(type=type_, source=SOURCE, subject=alert.subject, data=data)


# --- transitions ---------------------------------------------------------------------------------

async def acknowledge(session: AsyncSession, alert: Alert, by: str, note: str | None) -> Alert:
    if alert.status != "firing":
        raise Conflict(f"alert is {alert.status}; only a firing alert can be acknowledged", alert_status=alert.status)
    now = utcnow()
    alert.status = "acknowledged"
    alert.acknowledged_at = now
    alert.acknowledged_by = by
    alert.acknowledged_note = note
    # Acknowledged alerts neither repeat nor escalate.
    alert.next_notify_at = None
    alert.updated_at = now
    await session.flush()
    return alert


async def resolve(session: AsyncSession, engine: Engine, alert: Alert, *, by: str, reason: str | None) -> Alert:
    if alert.status == "resolved":
        raise Conflict("alert is already resolved", alert_status=alert.status)
    now = utcnow()
    alert.status = "resolved"
    alert.active_key = None
    alert.next_notify_at = None
    alert.resolved_at = now
    alert.resolved_by = by
    alert.resolution = reason
    alert.updated_at = now
    await session.flush()
    await engine.outbox.add(session, _alert_event(alert, ALERT_RESOLVED, engine.settings))
    # Tell the channels that heard about it, unless it is muted right now.
    if alert.notify_count > 0 and alert.suppressed_by is None:
        rule = await rules_repo.get(session, alert.rule_id)
        if rule is not None:
            channels = await deliveries.rule_channels(session, rule)
            if await deliveries.enqueue(session, engine.settings, alert, rule, channels, "resolved"):
                engine.wake_deliveries.set()
    return alert


# --- silences and inhibition ---------------------------------------------------------------------

def matcher_matches(matcher: dict[str, Any], labels: dict[str, Any]) -> bool:
    value = labels.get(matcher["name"])
    text = "" if value is None else str(value)
    hit = re.fullmatch(matcher["value"], text) is not None if matcher.get("is_regex") else text == matcher["value"]
    return hit if matcher.get("is_equal", True) else not hit


def silence_matches(silence: Silence, labels: dict[str, Any]) -> bool:
    return all(matcher_matches(m, labels) for m in silence.matchers)


async def suppressed_by(session: AsyncSession, alert: Alert, now: dt.datetime) -> tuple[str, dt.datetime | None] | None:
    """``("silence:<id>", ends_at)`` or ``("inhibited:<alert id>", None)`` when the alert is muted."""
    for silence in await silences_repo.active(session, now):
        if silence_matches(silence, alert.labels):
            return f"silence:{silence.id}", silence.ends_at
    inhibitors = await rules_repo.inhibitors_of(session, alert.rule_id)
    by_rule = {r.id: r for r in inhibitors}
    for source in await repository.active_of_rules(session, list(by_rule)):
        if source.id == alert.id:
            continue
        equal = (by_rule[source.rule_id].inhibits or {}).get("equal") or []
        if all(source.labels.get(k) == alert.labels.get(k) for k in equal):
            return f"inhibited:{source.id}", None
    return None


# --- the notification pass ------------------------------------------------------------------------

async def notify_due(session: AsyncSession, engine: Engine, limit: int = 200) -> int:
    """Look at every alert whose next check is due; returns how many were looked at."""
    now = utcnow()
    alerts = await repository.due_for_notification(session, now, limit)
    for alert in alerts:
        await _notify_one(session, engine, alert, now)
    return len(alerts)


async def _notify_one(session: AsyncSession, engine: Engine, alert: Alert, now: dt.datetime) -> None:
    settings = engine.settings
    rule = await rules_repo.get(session, alert.rule_id)
    if rule is None:
        await resolve(session, engine, alert, by="system", reason="rule deleted")
        return
    if alert.status != "firing":
        alert.next_notify_at = None
        return
    muted = await suppressed_by(session, alert, now)
    if muted is not None:
        alert.suppressed_by = muted[0]
        recheck = now + seconds(settings.suppressed_recheck)
        alert.next_notify_at = min(recheck, muted[1]) if muted[1] else recheck
        alert.updated_at = now
        return
    alert.suppressed_by = None
    repeat = seconds(parse_duration(rule.repeat_interval))
    created = False
    if alert.last_notified_at is None or now >= alert.last_notified_at + repeat:
        reason = "firing" if alert.notify_count == 0 else "repeat"
        channels = await deliveries.rule_channels(session, rule)
        created = bool(await deliveries.enqueue(session, settings, alert, rule, channels, reason))
        alert.notify_count += 1
        alert.last_notified_at = now
    assert alert.last_notified_at is not None
    next_at = alert.last_notified_at + repeat
    esc = rule.escalation
    if esc and alert.escalated_at is None:
        due = alert.created_at + seconds(parse_duration(esc["after"]))
        if now >= due:
            channels = await channels_repo.by_ids(session, [esc["channel"]])
            created = bool(await deliveries.enqueue(session, settings, alert, rule, channels, "escalation")) \
                or created
            alert.escalated_at = now
        else:
            next_at = min(next_at, due)
    alert.next_notify_at = next_at
    alert.updated_at = now
    await session.flush()
    if created:
        engine.wake_deliveries.set()
