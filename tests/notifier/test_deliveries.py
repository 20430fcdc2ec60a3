"""Deliveries against a real local HTTP receiver and SMTP sink: retries, restarts, slow targets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

from sqlalchemy import update
from standardwebhooks import Webhook

from services.notifier.models import Delivery, DeliveryAttempt
from shared.testing import eventually, make_event
from tests.notifier.conftest import FAST, Receiver, attempts, deliveries, inject, rule, webhook_channel


async def _fire(svc, subject: str = "acme", score: int = 2) -> None:
    await inject(svc, make_event("postsales.survey.csat", subject, {"score": score}))


async def _csat_rule(svc, channels: list[str]) -> dict:
    return await rule(svc, name="csat-low", event_type="postsales.survey.csat",
                      conditions={"data.score": {"lt": 3}}, group_wait="0s", repeat_interval="1h",
                      channels=channels)


async def test_receiver_down_then_back_gets_it_exactly_once(service) -> None:
    down = Receiver()  # its port is reserved but nothing listens yet
    async with service("notifier", run_consumers=False, delivery_max_attempts=100, **FAST) as svc:
        ch = await webhook_channel(svc, down.url())
        await _csat_rule(svc, [ch["id"]])
        await _fire(svc)

        async def failed_a_few() -> bool:
            ds = await deliveries(svc)
            return len(ds) == 1 and ds[0].attempts >= 3

        await eventually(failed_a_few, timeout=20)
        await down.start()
        try:
            async def delivered() -> Delivery | None:
                ds = await deliveries(svc, status="delivered")
                return ds[0] if ds else None

            d = await eventually(delivered, timeout=20)
            await asyncio.sleep(0.5)  # nothing more may arrive
            assert len(down.requests) == 1
            req = down.requests[0]
            assert req.headers["webhook-id"] == d.id
            Webhook(ch["secret"]).verify(req.body, req.headers)
            log = await attempts(svc, d.id)
            assert [a.number for a in log] == list(range(1, d.attempts + 1))
            assert [a.outcome for a in log] == ["failure"] * (d.attempts - 1) + ["success"]
            assert all(a.error for a in log[:-1]) and log[-1].status_code == 200
            api = (await svc.client.get("/v1/deliveries", params={"alert_id": d.alert_id})).json()["items"]
            assert len(api) == 1 and api[0]["status"] == "delivered"
            assert len(api[0]["attempt_log"]) == d.attempts
        finally:
            await down.stop()


async def test_gives_up_after_max_attempts_with_last_error(service, receiver) -> None:
    receiver.status = 500
    async with service("notifier", run_consumers=False, delivery_max_attempts=3, **FAST) as svc:
        ch = await webhook_channel(svc, receiver.url())
        await _csat_rule(svc, [ch["id"]])
        await _fire(svc)

        async def dead() -> list:
            return await deliveries(svc, status="dead")

        [d] = await eventually(dead, timeout=20)
        assert d.attempts == 3 and "HTTP 500" in (d.last_error or "")
        await asyncio.sleep(0.5)
        assert len(receiver.requests) == 3
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


async def test_restart_mid_retry_loses_nothing_and_sends_nothing_twice(service, receiver) -> None:
    receiver.status = 503
    settings = dict(FAST, delivery_max_attempts=100, delivery_base_delay=0.2, delivery_max_delay=0.5)
    async with service("notifier", run_consumers=False, **settings) as first:
        ch = await webhook_channel(first, receiver.url())
        await _csat_rule(first, [ch["id"]])
        await _fire(first, "acme")
        await _fire(first, "globex")

        async def retrying() -> bool:
            ds = await deliveries(first)
            return len(ds) == 2 and all(d.attempts >= 2 for d in ds)

        await eventually(retrying, timeout=20)
        url = first.settings.database_url
    before = len(receiver.requests)
    receiver.status = 200
    async with service("notifier", run_consumers=False, database_url=url, **settings) as second:
        async def all_delivered() -> list:
            ds = await deliveries(second)
            return ds if all(d.status == "delivered" for d in ds) else []

        ds = await eventually(all_delivered, timeout=20)
        await asyncio.sleep(0.5)
        assert len(ds) == 2 and len(receiver.requests) > before
        for d in ds:
            got = [r for r in receiver.requests if r.headers["webhook-id"] == d.id]
            assert [r.status for r in got].count(200) == 1, "delivered exactly once"
            log = await attempts(second, d.id)
            # One request per attempt record, and every attempt record is closed.
            assert len(got) == len(log) == d.attempts
            assert [a.outcome for a in log][-1] == "success"
            assert all(a.outcome in ("failure", "success") for a in log)
            Webhook(ch["secret"]).verify(got[-1].body, got[-1].headers)


async def test_crash_mid_send_is_retried_after_the_lease(service, receiver) -> None:
    async with service("notifier", run_consumers=False, **FAST) as svc:
        ch = await webhook_channel(svc, receiver.url())
        await _csat_rule(svc, [ch["id"]])
        receiver.delay = 1.0  # hold the first send in flight
        await _fire(svc)

        async def sending() -> list:
            return await deliveries(svc, status="sending")

        [d] = await eventually(sending)
    # The service stopped; simulate a process that died mid-send: the attempt stays open, the
    # lease is still held.
    async with svc.ctx.session_factory() as s, s.begin():
        await s.execute(update(DeliveryAttempt).where(DeliveryAttempt.delivery_id == d.id)
                        .values(outcome="sending", finished_at=None, status_code=None))
        await s.execute(update(Delivery).where(Delivery.id == d.id).values(
            status="sending", claimed_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)))
    receiver.delay = 0
    sent_before = len(receiver.requests)
    started = time.monotonic()
    async with service("notifier", run_consumers=False, database_url=svc.settings.database_url, **FAST) as again:
        async def delivered() -> list:
            return await deliveries(again, status="delivered")

        await eventually(delivered, timeout=20)
        assert time.monotonic() - started >= 0.5, "the lease is honoured before retrying"
        log = await attempts(again, d.id)
        assert [a.outcome for a in log] == ["abandoned", "success"]
        assert len(receiver.requests) == sent_before + 1


async def test_slow_target_does_not_block_others(service, receiver) -> None:
    slow = await Receiver(delay=30.0).start()
    try:
        # The timeout leaves a slow machine ample time for the fast channel's four deliveries.
        settings = dict(FAST, delivery_timeout=8.0, delivery_lease=12.0, delivery_concurrency_per_channel=1,
                        delivery_max_attempts=1)
        async with service("notifier", run_consumers=False, **settings) as svc:
            slow_ch = await webhook_channel(svc, slow.url(), name="slow")
            fast_ch = await webhook_channel(svc, receiver.url(), name="fast")
            await rule(svc, name="to-slow", event_type="postsales.ticket.opened", group_wait="0s",
                       channels=[slow_ch["id"]])
            await rule(svc, name="to-fast", event_type="postsales.ticket.resolved", group_wait="0s",
                       channels=[fast_ch["id"]])
            for i in range(4):
                await inject(svc, make_event("postsales.ticket.opened", f"slow-{i}", {"ticket_id": f"t{i}"}))
            for i in range(4):
                await inject(svc, make_event("postsales.ticket.resolved", f"fast-{i}", {"ticket_id": f"t{i}"}))

            async def fast_done() -> bool:
                return len(await deliveries(svc, channel_id=fast_ch["id"], status="delivered")) == 4

            await eventually(fast_done, timeout=10)
            # The slow channel sends one at a time, each hanging for its 8 s timeout: had the fast
            # channel waited behind it, at least one slow delivery would have finished first.
            slow_rows = await deliveries(svc, channel_id=slow_ch["id"])
            assert len(slow_rows) == 4 and not [d for d in slow_rows if d.status == "dead"]
            assert sum(d.status == "sending" for d in slow_rows) == 1, "per-channel limit of 1"
            assert len(receiver.requests) == 4

            async def first_timed_out() -> list:
                return await deliveries(svc, channel_id=slow_ch["id"], status="dead")

            dead = await eventually(first_timed_out, timeout=20)
            assert "timed out" in (dead[0].last_error or "")
    finally:
        await slow.stop()


async def test_email_and_slack_and_test_endpoint(service, receiver, smtp_sink) -> None:
    sink, port = smtp_sink
    async with service("notifier", run_consumers=False, **FAST) as svc:
        r = await svc.client.post("/v1/channels", json={
            "name": "csm-mail", "kind": "email", "address": "csm@example.com", "lang": "ja",
            "smtp": {"host": "127.0.0.1", "port": port, "tls": "none", "from_address": "alerts@example.com"}})
        assert r.status_code == 201, r.text
        mail = r.json()
        assert mail["smtp"]["tls"] == "none" and mail["secret"] is None
        slack = (await svc.client.post("/v1/channels", json={
            "name": "slack", "kind": "slack", "url": receiver.url("/slack")})).json()
        test = await svc.client.post(f"/v1/channels/{mail['id']}/test")
        assert test.status_code == 200 and test.json()["ok"], test.text
        assert len(sink.messages) == 1
        await rule(svc, name="detractor", event_type="postsales.survey.nps", conditions={"data.score": {"lte": 6}},
                   group_wait="0s", channels=[mail["id"], slack["id"]], severity="critical")
        await inject(svc, make_event("postsales.account.created", "acme-jp", {"account_id": "acme-jp",
                                                                             "name": "Acme Japan"}))
        await inject(svc, make_event("postsales.survey.nps", "acme-jp", {"score": 2, "respondent": "taro"}))

        async def mailed() -> bool:
            return len(sink.messages) == 2 and len(receiver.by_path("/slack")) == 1

        await eventually(mailed, timeout=15)
        msg = sink.messages[1]
        assert msg["to"] == ["csm@example.com"] and msg["from"] == "alerts@example.com"
        import email
        parsed = email.message_from_string(msg["data"])
        subject = str(email.header.make_header(email.header.decode_header(parsed["Subject"])))
        assert subject.startswith("[CRITICAL]") and "Acme Japan" in subject
        text = parsed.get_payload(decode=True).decode()
        assert "アカウントを開く: https://lifecycle.example.test/v1/accounts/acme-jp" in text
        blocks = json.loads(receiver.by_path("/slack")[0].body)
        assert blocks["blocks"][0]["type"] == "header" and "Acme Japan" in blocks["text"]
        button = blocks["blocks"][-1]["elements"][0]
        assert button["url"] == "https://lifecycle.example.test/v1/accounts/acme-jp"
        down = (await svc.client.post("/v1/channels", json={
            "name": "nowhere", "kind": "webhook", "url": Receiver().url()})).json()
        failed = (await svc.client.post(f"/v1/channels/{down['id']}/test")).json()
        assert failed["ok"] is False and failed["error"]
