"""Bounded state: finished deliveries and resolved alerts past retention are purged in batches by the
maintenance loop; newer rows, active alerts and unsent deliveries stay; dedup still works."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import update

from services.notifier.models import Alert, Delivery, DeliveryAttempt
from shared.testing import eventually, make_event
from tests.notifier.conftest import FAST, alerts, attempts, deliveries, inject, rule, webhook_channel


async def _backdate(svc, *, alert_id: str, alert_values: dict, delivery_age: dt.timedelta) -> None:
    now = dt.datetime.now(dt.UTC)
    async with svc.ctx.session_factory() as s, s.begin():
        if alert_values:
            await s.execute(update(Alert).where(Alert.id == alert_id).values(**alert_values))
        await s.execute(update(Delivery).where(Delivery.alert_id == alert_id).values(updated_at=now - delivery_age))


async def test_purge_keeps_what_is_young_or_active_and_dedup_still_works(service, receiver) -> None:
    settings = {**FAST, "delivery_retention": "7d", "resolved_alert_retention": "30d",
                "retention_interval": 0.3, "retention_batch_size": 2}
    async with service("notifier", run_consumers=False, run_relay=False, **settings) as svc:
        ch = await webhook_channel(svc, receiver.url())
        await rule(svc, name="csat-low", event_type="postsales.survey.csat", conditions={"data.score": {"lt": 3}},
                   group_wait="0s", repeat_interval="1h", channels=[ch["id"]])
        accounts = ["old-resolved", "young-resolved", "old-firing"] + [f"bulk-{i}" for i in range(5)]
        for acct in accounts:
            await inject(svc, make_event("postsales.survey.csat", acct, {"score": 1}))
        by_subject = {a.subject: a for a in await alerts(svc, rule_name="csat-low")}

        async def notified() -> bool:
            return len(await deliveries(svc, status="delivered")) == 8

        await eventually(notified, timeout=30)  # resolving a notified alert notifies again
        for acct in ["old-resolved", "young-resolved"] + [f"bulk-{i}" for i in range(5)]:
            r = await svc.client.post(f"/v1/alerts/{by_subject[acct].id}/resolve", json={"note": "done"})
            assert r.status_code == 200

        async def all_sent() -> bool:
            ds = await deliveries(svc)
            return len(ds) == 15 and all(d.status == "delivered" for d in ds)

        await eventually(all_sent, timeout=30)
        now = dt.datetime.now(dt.UTC)
        old = {"resolved_at": now - dt.timedelta(days=40)}
        await _backdate(svc, alert_id=by_subject["old-resolved"].id, alert_values=old,
                        delivery_age=dt.timedelta(days=40))
        for i in range(5):
            await _backdate(svc, alert_id=by_subject[f"bulk-{i}"].id, alert_values=old,
                            delivery_age=dt.timedelta(days=40))
        await _backdate(svc, alert_id=by_subject["young-resolved"].id,
                        alert_values={"resolved_at": now - dt.timedelta(days=10)}, delivery_age=dt.timedelta(days=10))
        firing = by_subject["old-firing"]
        await _backdate(svc, alert_id=firing.id, delivery_age=dt.timedelta(days=1), alert_values={
            "created_at": now - dt.timedelta(days=400), "starts_at": now - dt.timedelta(days=400)})
        # An unsent delivery is never purged, however old.
        stuck_id = str(uuid.uuid4())
        async with svc.ctx.session_factory() as s, s.begin():
            s.add(Delivery(id=stuck_id, alert_id=firing.id, channel_id=ch["id"], channel_kind="webhook",
                           reason="repeat", status="pending", payload={"body": "{}"}, attempts=0,
                           next_attempt_at=now + dt.timedelta(days=365), created_at=now - dt.timedelta(days=100),
                           updated_at=now - dt.timedelta(days=100)))

        async def purged() -> bool:
            subjects = {a.subject for a in await alerts(svc, rule_name="csat-low")}
            return subjects == {"young-resolved", "old-firing"}

        await eventually(purged, timeout=30)
        kept = {a.subject: a for a in await alerts(svc, rule_name="csat-low")}
        # young-resolved: the alert stays (10d < 30d), its deliveries go (10d > 7d), in a pass of their own.
        async def young_deliveries_gone() -> bool:
            return await deliveries(svc, alert_id=kept["young-resolved"].id) == []

        await eventually(young_deliveries_gone, timeout=30)
        # old-firing: never purged; its young delivery and the old unsent one stay.
        assert kept["old-firing"].status == "firing"
        left = {d.id: d for d in await deliveries(svc, alert_id=firing.id)}
        assert stuck_id in left and len(left) == 2
        sent = next(d for d in left.values() if d.id != stuck_id)
        assert len(await attempts(svc, sent.id)) == 1
        async with svc.ctx.session_factory() as s:
            from sqlalchemy import func, select
            n_attempts = (await s.execute(select(func.count()).select_from(DeliveryAttempt))).scalar_one()
        assert n_attempts == 1  # every purged delivery took its attempts with it

        metrics = (await svc.client.get("/metrics")).text
        assert 'retention_purged_rows_total{table="alerts"} 6.0' in metrics
        assert 'retention_purged_rows_total{table="deliveries"} 14.0' in metrics
        assert 'retention_purged_rows_total{table="delivery_attempts"} 14.0' in metrics

        # Dedup inside the window: the same condition folds into the 400-day-old firing alert.
        await inject(svc, make_event("postsales.survey.csat", "old-firing", {"score": 2}))
        same = [a for a in await alerts(svc, rule_name="csat-low") if a.subject == "old-firing"]
        assert len(same) == 1 and same[0].id == firing.id and same[0].event_count == 2
