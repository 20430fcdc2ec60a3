"""End to end over the real broker: domain events in, alerts and signed deliveries out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from standardwebhooks import Webhook

from services.notifier.models import AccountState
from shared.testing import eventually, make_event
from tests.notifier.conftest import FAST, alerts, builtin_rule, deliveries, rule, update_rule, webhook_channel

FEEDBACK = "postsales.feedback.v1"
METRICS = "postsales.metrics.v1"
LIFECYCLE = "postsales.lifecycle.v1"
ALERTS = "postsales.alerts.v1"


async def test_detractor_survey_gives_one_alert_and_one_signed_delivery(service, kafka, receiver) -> None:
    async with service("notifier", **FAST) as svc:
        ch = await webhook_channel(svc, receiver.url(), default=True)
        nps = await update_rule(svc, await builtin_rule(svc, "nps-detractor"), group_wait="0s",
                                repeat_interval="1h")
        await kafka.publish(FEEDBACK, [
            make_event("postsales.survey.nps", "acme", {"score": 3, "respondent": "ann"}),
            make_event("postsales.survey.nps", "acme", {"score": 10, "respondent": "bob"}),
        ])

        async def one_request() -> bool:
            return len(receiver.requests) == 1

        await eventually(one_request, timeout=30)
        [alert] = await alerts(svc)
        assert alert.rule_id == nps["id"] and alert.subject == "acme" and alert.status == "firing"
        req = receiver.requests[0]
        payload = Webhook(ch["secret"]).verify(req.body, req.headers)
        assert req.headers["webhook-signature"].startswith("v1,")
        assert payload["type"] == "postsales.alert.fired"
        data = payload["data"]
        assert data["alert_id"] == alert.id and data["event"]["data"]["score"] == 3
        assert data["link"] == "https://lifecycle.example.test/v1/accounts/acme"
        assert "NPS detractor at acme: score 3" in data["title"]

        # A second detractor within repeat_interval joins the alert and sends nothing.
        await kafka.publish(FEEDBACK, [make_event("postsales.survey.nps", "acme", {"score": 1})])

        async def folded() -> bool:
            return (await alerts(svc))[0].event_count == 2

        await eventually(folded, timeout=15)
        await asyncio.sleep(0.5)  # several notification passes
        assert len(receiver.requests) == 1 and len(await deliveries(svc)) == 1
        api = (await svc.client.get("/v1/deliveries", params={"alert_id": alert.id})).json()["items"]
        assert [d["status"] for d in api] == ["delivered"] and api[0]["attempt_log"][0]["outcome"] == "success"

        fired = await eventually(lambda: kafka.events(ALERTS, settle=0.3))
        assert [(e.type, e.data["alert_id"]) for e in fired] == [("postsales.alert.fired", alert.id)]
        assert fired[0].data["link"] == "https://lifecycle.example.test/v1/accounts/acme"

        # Resolving tells the channel, once.
        r = await svc.client.post(f"/v1/alerts/{alert.id}/resolve", json={"by": "csm"})
        assert r.status_code == 200

        async def resolved_sent() -> bool:
            return len(receiver.requests) == 2

        await eventually(resolved_sent)
        assert json.loads(receiver.requests[1].body)["type"] == "postsales.alert.resolved"


async def test_silence_inhibition_and_automatic_resolution(service, kafka, receiver) -> None:
    async with service("notifier", **FAST) as svc:
        await webhook_channel(svc, receiver.url(), default=True)
        tickets = await rule(svc, name="ticket-opened", event_type="postsales.ticket.opened", group_wait="0s",
                             severity="info")
        await update_rule(svc, await builtin_rule(svc, "renewal-at-risk"), group_wait="0s",
                          inhibits={"rules": [tickets["id"]], "equal": ["subject"]})
        await update_rule(svc, await builtin_rule(svc, "health-turned-red"), group_wait="0s")
        end = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        s = await svc.client.post("/v1/silences", json={
            "matchers": [{"name": "subject", "value": "silenced-co"},
                         {"name": "alertname", "value": "ticket-opened"}],
            "created_by": "csm@example.com", "comment": "known outage", "ends_at": end})
        assert s.status_code == 201

        # Health first (metrics topic), so the renewal rule sees a yellow account.
        await kafka.publish(METRICS, [make_event("postsales.health.changed", "risky-co", {
            "account_id": "risky-co", "new_score": 55, "new_band": "yellow", "old_band": "green"})])

        async def band_known() -> bool:
            async with svc.ctx.session_factory() as session:
                st = await session.get(AccountState, "risky-co")
                return st is not None and st.health_band == "yellow"

        await eventually(band_known, timeout=30)
        await kafka.publish(LIFECYCLE, [make_event("postsales.renewal.window_entered", "risky-co", {
            "account_id": "risky-co", "renewal_date": "2027-02-01", "window_days": 90})])

        async def renewal_alert() -> list:
            return [a for a in await alerts(svc) if a.rule_name == "renewal-at-risk" and a.last_notified_at]

        await eventually(renewal_alert, timeout=15)
        await kafka.publish(FEEDBACK, [
            make_event("postsales.ticket.opened", "risky-co", {"ticket_id": "t1"}),
            make_event("postsales.ticket.opened", "silenced-co", {"ticket_id": "t2"}),
            make_event("postsales.ticket.opened", "calm-co", {"ticket_id": "t3"}),
        ])
        await kafka.publish(METRICS, [make_event("postsales.health.changed", "red-co", {
            "account_id": "red-co", "new_score": 20, "new_band": "red", "old_band": "yellow"})])

        async def settled() -> dict:
            got = {a.subject: a for a in await alerts(svc, rule_name="ticket-opened")}
            ok = (len(got) == 3 and got["calm-co"].last_notified_at is not None
                  and got["risky-co"].suppressed_by and got["silenced-co"].suppressed_by)
            return got if ok else {}

        got = await eventually(settled, timeout=15)
        assert got["risky-co"].suppressed_by.startswith("inhibited:")
        assert got["silenced-co"].suppressed_by == f"silence:{s.json()['id']}"
        async def both_sent() -> set[str]:
            sent = {json.loads(r.body)["data"]["subject"] for r in receiver.requests}
            return sent if {"calm-co", "risky-co"} <= sent else set()  # risky-co: the renewal alert itself

        await eventually(both_sent, timeout=20)
        muted = {got["risky-co"].id, got["silenced-co"].id}
        assert not [d for d in await deliveries(svc) if d.alert_id in muted]

        # Health back to green resolves the red alert automatically.
        async def red_alert() -> list:
            return await alerts(svc, rule_name="health-turned-red", status="firing")

        [red] = await eventually(red_alert, timeout=15)
        await kafka.publish(METRICS, [make_event("postsales.health.changed", "red-co", {
            "account_id": "red-co", "new_score": 80, "new_band": "green", "old_band": "red"})])

        async def auto_resolved() -> list:
            return await alerts(svc, id=red.id, status="resolved")

        [done] = await eventually(auto_resolved, timeout=15)
        assert done.resolved_by == "auto" and "postsales.health.changed" in (done.resolution or "")

        async def resolved_event() -> list:
            return [e for e in await kafka.events(ALERTS, settle=0.2) if e.type == "postsales.alert.resolved"]

        [ev] = await eventually(resolved_event)
        assert ev.subject == "red-co" and ev.data["alert_id"] == red.id

        # When the silence is lifted, the still-firing alert is notified.
        assert (await svc.client.delete(f"/v1/silences/{s.json()['id']}")).status_code == 204

        async def unsilenced() -> bool:
            return any(d.alert_id == got["silenced-co"].id for d in await deliveries(svc))

        await eventually(unsilenced, timeout=10)
