"""What a new user trips over: unknown event types, imported history, email without SMTP, notes on
ack/resolve, links that follow the public URLs, texts one fact per line, rules that notify no one,
and `onboarding-stuck` only during onboarding."""

from __future__ import annotations

import datetime as dt
import json

from services.notifier.rules.service import NO_CHANNEL
from shared.events.conditions import check_event_type
from shared.events.registry import known_event_types
from shared.testing import eventually, make_event
from tests.notifier.conftest import FAST, alerts, deliveries, inject, rule, webhook_channel


async def test_unknown_event_type_is_a_422_naming_the_known_types(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        for field, body in (
            (["body", "event_type"], {"name": "r", "event_type": "postsales.survey.npss"}),
            (["body", "resolve_when", "event_type"],
             {"name": "r", "event_type": "postsales.survey.nps",
              "resolve_when": {"event_type": "postsales.nope.*"}}),
        ):
            r = await svc.client.post("/v1/rules", json=body)
            assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
            errors = r.json()["errors"]
            hit = next(e for e in errors if e["loc"] == field)
            assert "names no registered event type" in hit["msg"]
            assert "postsales.survey.nps" in hit["msg"] and "postsales.health.changed" in hit["msg"]
        assert [x for x in (await svc.client.get("/v1/rules")).json()["items"] if not x["builtin"]] == []
        # A prefix of registered types is fine.
        await rule(svc, name="any-ticket", event_type="postsales.ticket.*")


async def test_builtin_rules_only_name_registered_types(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        items = (await svc.client.get("/v1/rules", params={"limit": 500})).json()["items"]
        builtin = [r for r in items if r["builtin"]]
        assert len(builtin) == 6
        for r in builtin:
            check_event_type(r["event_type"])
            rws = r["resolve_when"] or []
            for rw in rws if isinstance(rws, list) else [rws]:
                check_event_type(rw["event_type"])
                assert rw["event_type"] in known_event_types()


async def test_events_older_than_max_trigger_age_fire_nothing(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False, **FAST) as svc:
        await rule(svc, name="detractor", event_type="postsales.survey.nps", conditions={"data.score": {"lte": 6}})
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        await inject(svc, make_event("postsales.survey.nps", "imported", {"score": 1}, time=old))
        # Inside the window (6 days old) it fires: proves the rule works before the negative check.
        recent = dt.datetime.now(dt.UTC) - dt.timedelta(days=6)
        await inject(svc, make_event("postsales.survey.nps", "recent", {"score": 1}, time=recent))
        fired = await alerts(svc, rule_name="detractor")
        assert [a.subject for a in fired] == ["recent"]

    # The age is a setting (a duration).
    async with service("notifier", run_consumers=False, run_relay=False, max_trigger_age="5d", **FAST) as svc:
        await rule(svc, name="detractor", event_type="postsales.survey.nps", conditions={"data.score": {"lte": 6}})
        await inject(svc, make_event("postsales.survey.nps", "recent", {"score": 1}, time=recent))
        await inject(svc, make_event("postsales.survey.nps", "now", {"score": 1}))
        assert [a.subject for a in await alerts(svc, rule_name="detractor")] == ["now"]


async def test_imported_history_through_kafka_pages_no_one(service, kafka, receiver) -> None:
    from shared.events.registry import FEEDBACK_TOPIC
    async with service("notifier", **FAST) as svc:
        ch = await webhook_channel(svc, receiver.url())
        await rule(svc, name="detractor", event_type="postsales.survey.nps", conditions={"data.score": {"lte": 6}},
                   channels=[ch["id"]], group_wait="0s")
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
        # One account, so one partition: once the live event is handled, the history before it was too.
        history = [make_event("postsales.survey.nps", "acme", {"score": 0}, time=old + dt.timedelta(days=i))
                   for i in range(5)]
        live = make_event("postsales.survey.nps", "acme", {"score": 3})
        await kafka.publish(FEEDBACK_TOPIC, [*history, live])

        async def live_delivered() -> bool:
            return len(receiver.requests) >= 1

        await eventually(live_delivered, timeout=30)
        (alert,) = await alerts(svc, rule_name="detractor")
        assert alert.event_count == 1 and alert.last_event["id"] == live.id
        assert len(receiver.requests) == 1


async def test_email_channel_without_smtp_is_refused_saying_what_to_set(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        r = await svc.client.post("/v1/channels", json={"name": "mail", "kind": "email", "address": "a@b.example"})
        assert r.status_code == 422
        err = next(e for e in r.json()["errors"] if e["loc"] == ["body", "smtp", "host"])
        assert "NOTIFIER_SMTP_HOST" in err["msg"] and "smtp" in err["msg"]
        r = await svc.client.post("/v1/channels", json={"name": "mail", "kind": "email", "address": "a@b.example",
                                                       "smtp": {"host": "smtp.example.com"}})
        assert r.status_code == 201, r.text
    async with service("notifier", run_consumers=False, run_relay=False, smtp_host="smtp.example.com") as svc:
        r = await svc.client.post("/v1/channels", json={"name": "mail", "kind": "email", "address": "a@b.example"})
        assert r.status_code == 201, r.text
        assert r.json()["smtp"]["host"] == "smtp.example.com"


async def test_ack_and_resolve_take_the_same_note(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False, **FAST) as svc:
        await rule(svc, name="detractor", event_type="postsales.survey.nps", conditions={"data.score": {"lte": 6}})
        await inject(svc, make_event("postsales.survey.nps", "acme", {"score": 2}))
        (a,) = await alerts(svc, rule_name="detractor")
        r = await svc.client.post(f"/v1/alerts/{a.id}/ack", json={"by": "csm", "note": "calling them today"})
        assert r.status_code == 200 and r.json()["acknowledged_note"] == "calling them today"
        r = await svc.client.post(f"/v1/alerts/{a.id}/resolve", json={"by": "csm", "note": "they are fine"})
        body = r.json()
        assert r.status_code == 200 and body["resolution"] == "they are fine"
        assert body["acknowledged_note"] == "calling them today"
        got = (await svc.client.get(f"/v1/alerts/{a.id}")).json()
        assert (got["acknowledged_note"], got["resolution"]) == ("calling them today", "they are fine")
        # Unknown fields are still refused.
        r = await svc.client.post(f"/v1/alerts/{a.id}/ack", json={"notes": "x"})
        assert r.status_code == 422


def _text_lines(text: str) -> list[str]:
    return text.split("\n")


async def _red_account_alert(svc, channel_ids: list[str]) -> None:
    await inject(svc, make_event("postsales.account.created", "acme", {"account_id": "acme", "name": "Acme Corp",
                                                                         "stage": "adoption"}))
    await inject(svc, make_event("postsales.health.changed", "acme", {
        "account_id": "acme", "old_band": "yellow", "new_band": "red", "old_score": 55.0, "new_score": 42.5,
        "factors": []}))
    await rule(svc, name="detractor", event_type="postsales.survey.nps", conditions={"data.score": {"lte": 6}},
               channels=channel_ids, group_wait="0s")
    await inject(svc, make_event("postsales.survey.nps", "acme", {"score": 2, "respondent": "cto@acme.example"}))


async def test_links_follow_public_urls_and_texts_are_one_fact_per_line(service, receiver, monkeypatch) -> None:
    monkeypatch.setenv("LIFECYCLE_PORT", "9102")
    monkeypatch.setenv("NOTIFIER_PORT", "9104")
    settings = {k: v for k, v in FAST.items() if k != "lifecycle_public_url"}
    async with service("notifier", run_consumers=False, run_relay=False, **settings) as svc:
        en = await webhook_channel(svc, receiver.url("/en"), name="en")
        ja = await webhook_channel(svc, receiver.url("/ja"), name="ja", lang="ja")
        await _red_account_alert(svc, [en["id"], ja["id"]])

        async def both() -> bool:
            return len(receiver.requests) == 2

        await eventually(both, timeout=20)
        (alert,) = await alerts(svc, rule_name="detractor")
        by_path = {r.path: json.loads(r.body) for r in receiver.requests}
        en_data, ja_data = by_path["/en"]["data"], by_path["/ja"]["data"]
        assert by_path["/en"]["type"] == "postsales.alert.fired"
        assert en_data["link"] == "http://127.0.0.1:9102/v1/accounts/acme"
        assert en_data["links"]["alert"] == f"http://127.0.0.1:9104/v1/alerts/{alert.id}"
        assert en_data["links"]["health"] == "http://127.0.0.1:8003/v1/accounts/acme/health"
        lines = _text_lines(en_data["text"])
        assert lines[0] == "Account: Acme Corp (acme)"
        assert lines[1] == "Rule: detractor · severity warning · status firing"
        assert lines[2] == "Health: red (42.5)"
        assert lines[3].startswith("Event: postsales.survey.nps at ") and lines[3].endswith("(1 so far)")
        assert "  score: 2" in lines and "  respondent: cto@acme.example" in lines
        assert lines[-1] == "Open the account: http://127.0.0.1:9102/v1/accounts/acme"
        ja_lines = _text_lines(ja_data["text"])
        assert ja_lines[0] == "アカウント: Acme Corp (acme)"
        assert ja_lines[2] == "ヘルス: red (42.5)"
        assert ja_lines[3].startswith("イベント: postsales.survey.nps (")
        assert ja_lines[-1] == "アカウントを開く: http://127.0.0.1:9102/v1/accounts/acme"
        for text in (en_data["text"], ja_data["text"]):
            assert ")Event" not in text and ")イベント" not in text
            assert all(line.strip() for line in _text_lines(text))

    # With a console, people's links open the console; the API link stays under its own key.
    async with service("notifier", run_consumers=False, run_relay=False, lifecycle_public_url="https://lc.example",
                       console_public_url="https://console.example/", **settings) as svc:
        receiver.requests.clear()
        slack = (await svc.client.post("/v1/channels", json={"name": "s", "kind": "slack",
                                                              "url": receiver.url("/slack")})).json()
        await _red_account_alert(svc, [slack["id"]])
        await eventually(lambda: _async_true(len(receiver.requests) == 1), timeout=20)
        body = json.loads(receiver.requests[0].body)
        button = body["blocks"][-1]["elements"][0]
        assert button["url"] == "https://console.example/accounts/acme"
        (d,) = await deliveries(svc)
        assert "https://console.example/accounts/acme" in d.payload["body"]


async def _async_true(value: bool) -> bool:
    return value


async def test_rules_say_when_they_notify_no_one(service, receiver) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        items = (await svc.client.get("/v1/rules", params={"limit": 500})).json()["items"]
        builtin = [r for r in items if r["builtin"]]
        assert builtin and all(r["deliverable"] is False and NO_CHANNEL in r["warnings"] for r in builtin)
        one = (await svc.client.get(f"/v1/rules/{builtin[0]['id']}")).json()
        assert one["deliverable"] is False and any("default" in w for w in one["warnings"])

        ch = await webhook_channel(svc, receiver.url(), name="direct")
        own = await rule(svc, name="with-channel", event_type="postsales.survey.nps", channels=[ch["id"]])
        assert own["deliverable"] is True and own["warnings"] == []

        await webhook_channel(svc, receiver.url(), name="fallback", default=True)
        items = (await svc.client.get("/v1/rules", params={"limit": 500})).json()["items"]
        assert all(r["deliverable"] and r["warnings"] == [] for r in items)

        # What GET returns, PUT accepts (the read-only fields are ignored).
        r = await svc.client.put(f"/v1/rules/{own['id']}", json={**own, "severity": "critical"})
        assert r.status_code == 200, r.text
        assert r.json()["severity"] == "critical" and r.json()["id"] == own["id"]


async def test_onboarding_stuck_only_during_onboarding_and_resolves(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False, **FAST) as svc:
        def task(account: str, task_id: str, kind: str) -> dict:
            return {"account_id": account, "task_id": task_id, "title": f"Task {task_id}", "kind": kind}

        for acct, stage in (("onb", "onboarding"), ("adopt", "adoption")):
            await inject(svc, make_event("postsales.account.created", acct, {"account_id": acct, "stage": stage}))
        await inject(svc, make_event("postsales.task.overdue", "onb", task("onb", "t1", "milestone")))
        await inject(svc, make_event("postsales.task.overdue", "onb", task("onb", "t2", "commitment")))
        await inject(svc, make_event("postsales.task.overdue", "onb", task("onb", "t3", "task")))  # not the plan's
        await inject(svc, make_event("postsales.task.overdue", "adopt", task("adopt", "t4", "milestone")))
        fired = await alerts(svc, rule_name="onboarding-stuck")
        assert sorted(a.labels["data.task_id"] for a in fired) == ["t1", "t2"]
        assert {a.subject for a in fired} == {"onb"}

        # Completing t1 resolves only t1's alert.
        await inject(svc, make_event("postsales.task.completed", "onb", task("onb", "t1", "milestone")))
        state = {a.labels["data.task_id"]: a.status for a in await alerts(svc, rule_name="onboarding-stuck")}
        assert state == {"t1": "resolved", "t2": "firing"}

        # Leaving onboarding resolves the rest, and later overdue tasks fire nothing.
        await inject(svc, make_event("postsales.account.stage_changed", "onb",
                                     {"account_id": "onb", "from": "onboarding", "to": "adoption"}))
        state = {a.labels["data.task_id"]: a.status for a in await alerts(svc, rule_name="onboarding-stuck")}
        assert state == {"t1": "resolved", "t2": "resolved"}
        await inject(svc, make_event("postsales.task.overdue", "onb", task("onb", "t5", "milestone")))
        assert len(await alerts(svc, rule_name="onboarding-stuck")) == 2

        # Imported history (an old move into onboarding) does not put the account back there.
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)
        await inject(svc, make_event("postsales.account.stage_changed", "onb",
                                     {"account_id": "onb", "from": "prospect", "to": "onboarding"}, time=long_ago))
        await inject(svc, make_event("postsales.task.overdue", "onb", task("onb", "t6", "milestone")))
        assert len(await alerts(svc, rule_name="onboarding-stuck")) == 2
