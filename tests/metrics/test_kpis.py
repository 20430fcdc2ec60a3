"""KPIs on a hand-checked fixture, fed through the real consumers (lifecycle, feedback, usage topics).

Period: 2026-01-01 .. 2026-03-31. The arithmetic of every expected value is written next to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.events.registry import FEEDBACK_TOPIC, LIFECYCLE_TOPIC, USAGE_TOPIC
from shared.testing import KafkaProbe, eventually, make_event

PERIOD = {"from": "2026-01-01", "to": "2026-03-31"}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def lc(type: str, account: str, when: str, **data: Any) -> Any:
    return make_event(f"postsales.{type}", account, {"account_id": account, **data}, time=at(when))


ACCOUNTS = {  # id: (segment, owner, seats, arr, contract_start, renewal_date, created)
    "A": ("ent", "ann", 10, "1000", "2025-12-01", "2026-02-01", "2025-06-01"),
    "B": ("ent", "bob", 5, "2000", "2026-01-01", "2026-03-01", "2025-06-01"),
    "C": ("smb", "ann", 20, "3000", "2025-09-01", "2026-05-01", "2025-06-01"),
    "D": ("smb", "bob", 4, "500", "2025-09-01", "2026-03-01", "2025-06-01"),
    "E": ("smb", "ann", None, "800", "2025-09-01", "2026-03-15", "2025-06-01"),
    "F": ("smb", "bob", 10, "100", "2026-02-01", "2027-02-01", "2026-02-01"),  # created mid-period
}


def lifecycle_events() -> list[Any]:
    events = []
    for acct, (segment, owner, seats, arr, start, renewal, created) in ACCOUNTS.items():
        data: dict[str, Any] = {"name": acct, "stage": "onboarding", "segment": segment, "owner": owner, "seats": seats,
                                "arr": arr, "currency": "EUR", "contract_start": start, "renewal_date": renewal}
        if acct == "D":
            data["planned_go_live"] = "2026-03-20"  # never completed: counts against success
        events.append(lc("account.created", acct, created + "T00:00:00", **data))
    events += [
        lc("account.stage_changed", "E", "2026-02-15T12:00:00", **{"from": "adoption", "to": "churned"}),
        lc("renewal.recorded", "A", "2026-02-01T10:00:00", outcome="renewed", arr_before="1000", arr_after="1200",
           renewal_date="2026-02-01"),
        lc("renewal.recorded", "B", "2026-03-01T10:00:00", outcome="renewed", arr_before="2000", arr_after="1500",
           renewal_date="2026-03-01"),
        lc("renewal.recorded", "D", "2026-03-01T10:00:00", outcome="churned", arr_before="500", arr_after="0",
           renewal_date="2026-03-01"),
        lc("renewal.recorded", "C", "2026-05-01T10:00:00", outcome="renewed", arr_before="3000", arr_after="3300",
           renewal_date="2026-05-01"),  # outside the period
        lc("opportunity.updated", "A", "2026-02-10T00:00:00", opportunity_id="o1", kind="upsell", amount="300",
           status="won"),
        lc("opportunity.updated", "C", "2026-03-05T00:00:00", opportunity_id="o2", kind="cross_sell", amount="150",
           status="won"),
        lc("opportunity.updated", "F", "2026-03-10T00:00:00", opportunity_id="o3", kind="upsell", amount="50",
           status="won"),
        lc("opportunity.updated", "B", "2026-03-10T00:00:00", opportunity_id="o4", kind="upsell", amount="999",
           status="open"),
        lc("opportunity.updated", "C", "2025-12-01T00:00:00", opportunity_id="o5", kind="upsell", amount="77",
           status="won"),  # before the period
        lc("onboarding.completed", "A", "2026-01-20T12:00:00", completed_at="2026-01-20T12:00:00Z",
           planned_go_live="2026-01-15"),
        lc("onboarding.completed", "B", "2026-02-15T12:00:00", completed_at="2026-02-15T12:00:00Z",
           planned_go_live="2026-02-20"),
        lc("onboarding.completed", "F", "2026-03-13T12:00:00", completed_at="2026-03-13T12:00:00Z",
           planned_go_live="2026-03-15"),
        lc("onboarding.completed", "C", "2025-11-01T12:00:00", completed_at="2025-11-01T12:00:00Z",
           planned_go_live="2025-11-15"),  # before the period
    ]
    return events


def feedback_events() -> list[Any]:
    def fb(type: str, account: str, when: str, **data: Any) -> Any:
        return make_event(f"postsales.{type}", account, data, time=at(when))

    nps = [("A", 10), ("A", 10), ("B", 9), ("C", 8), ("C", 7), ("D", 6)]  # + one 2 posted over HTTP
    events = [fb("survey.nps", a, f"2026-02-0{i + 1}T09:00:00", score=s) for i, (a, s) in enumerate(nps)]
    events.append(fb("survey.nps", "A", "2025-12-31T23:59:59", score=0))  # before the period
    csat = [("A", 5), ("B", 4), ("C", 4), ("D", 3)]  # + one 1 posted over HTTP
    events += [fb("survey.csat", a, f"2026-03-0{i + 1}T09:00:00", score=s) for i, (a, s) in enumerate(csat)]
    events += [
        fb("ticket.opened", "A", "2026-01-10T09:00:00", ticket_id="t1"),
        fb("ticket.responded", "A", "2026-01-10T11:00:00", ticket_id="t1"),
        fb("ticket.resolved", "A", "2026-01-12T09:00:00", ticket_id="t1"),
        fb("ticket.opened", "B", "2026-02-01T00:00:00", ticket_id="t2"),
        fb("ticket.responded", "B", "2026-02-02T00:00:00", ticket_id="t2"),
        # out of order: the response arrives before the opening
        fb("ticket.responded", "C", "2026-03-30T10:30:00", ticket_id="t3"),
        fb("ticket.opened", "C", "2026-03-30T10:00:00", ticket_id="t3"),
        fb("ticket.resolved", "C", "2026-03-31T08:00:00", ticket_id="t3"),
        fb("ticket.opened", "D", "2026-03-31T12:00:00", ticket_id="t4"),
        fb("ticket.opened", "A", "2025-12-20T12:00:00", ticket_id="t0"),  # before the period
        fb("ticket.resolved", "A", "2026-01-05T12:00:00", ticket_id="t0"),
    ]
    return events


def usage_events() -> list[Any]:
    def use(account: str, user: str, day: str) -> Any:
        return make_event("usage.login", account, {"user_id": user}, time=at(day + "T08:00:00"))

    events = [use("A", f"a{i}", f"2026-03-{10 + i}") for i in range(1, 7)]  # 6 users in the window
    events += [use("A", "a1", "2026-03-25"), use("A", "a7", "2026-02-01")]  # repeat; outside the window
    events += [use("B", f"b{i}", "2026-03-31") for i in range(1, 6)]  # 5
    events += [use("D", "d1", "2026-03-02"), use("D", "d2", "2026-03-03")]  # 2 (window starts 03-02)
    events += [use("D", "d3", "2026-03-01")]  # one day before the window
    events += [use("F", "f1", "2026-03-15")]  # 1
    events += [use("ghost", f"g{i}", "2026-03-15") for i in range(3)]  # unknown account: kept, not counted
    return events


async def test_kpis_on_a_hand_checked_fixture(service: Any, kafka: KafkaProbe) -> None:
    async with service("metrics", health_interval=0.1, max_event_age="36500d") as svc:  # a fixed calendar
        await kafka.publish(LIFECYCLE_TOPIC, lifecycle_events())
        await kafka.publish(FEEDBACK_TOPIC, feedback_events())
        await kafka.publish(USAGE_TOPIC, usage_events())
        writer = svc.client_for("test-events-w-token-0123456789ab")
        r = await writer.post("/v1/surveys", json={"account_id": "E", "kind": "nps", "score": 2,
                                                   "at": "2026-02-20T09:00:00Z"})
        assert r.status_code == 202
        r = await writer.post("/v1/surveys", json={"account_id": "E", "kind": "csat", "score": 1,
                                                   "at": "2026-03-20T09:00:00Z"})
        assert r.status_code == 202
        reader = svc.client_for("test-metrics-ro-token-0123456789")

        async def settled() -> dict[str, Any] | None:
            k = (await reader.get("/v1/kpis", params=PERIOD)).json()
            done = (k["nps"]["denominator"] == 7 and k["csat"]["denominator"] == 5
                    and k["ticket_resolution_rate"]["denominator"] == 4 and k["grr"]["denominator"] == 3500
                    and k["onboarding_success_rate"]["denominator"] == 4 and k["expansion_rate"]["numerator"] == 3
                    and k["utilization_rate"]["numerator"] == 14 and k["logo_churn_rate"]["numerator"] == 2
                    and k["ticket_first_response_hours_median"]["denominator"] == 3)
            return k if done else None

        k = await eventually(settled, timeout=60, interval=0.3, message="all fixture events applied")

        def check(name: str, value: float | None, numerator: float | None, denominator: float) -> None:
            assert (k[name]["value"], k[name]["numerator"], k[name]["denominator"]) == (value, numerator,
                                                                                        denominator), (name, k[name])

        # NPS: 10,10,9 promoters (3); 8,7 passives; 6 and 2 detractors (2): (3-2)/7 = 14.29
        check("nps", 14.29, 1, 7)
        # CSAT: 5,4,4 satisfied of 5,4,4,3,1: 3/5 = 60%; mean 17/5 = 3.4
        check("csat", 60.0, 3, 5)
        assert k["csat"]["details"]["mean"] == 3.4
        # Renewals with renewal_date in the period: A 1000->1200, B 2000->1500, D 500 churned.
        # Up for renewal 3500; churned 500; contraction 500 (B); expansion 200 (A).
        # GRR = (3500-500-500)/3500 = 71.43%; NRR = (2500+200)/3500 = 77.14%
        check("grr", 71.43, 2500, 3500)
        check("nrr", 77.14, 2700, 3500)
        # Renewed {A,B} / renewal in the period {A,B,D} recorded + E (renewal_date 2026-03-15) = 2/4
        check("renewal_rate", 50.0, 2, 4)
        # Active at 2026-01-01: A,B,C,D,E (F came 2026-02-01). Churned in the period: E (stage), D (renewal) = 2/5
        check("logo_churn_rate", 40.0, 2, 5)
        # Won upsell/cross-sell in the period: A, C, F (o5 is before it, o4 is open) / active in the period 6
        check("expansion_rate", 50.0, 3, 6)
        # Expansion ARR 300+150+50 = 500 / starting ARR of A..E 1000+2000+3000+500+800 = 7300 -> 6.85%
        check("expansion_arr_rate", 6.85, 500, 7300)
        # 30 days to 2026-03-31 (from 03-02): A 6 + B 5 + C 0 + D 2 + F 1 = 14 users / seats 10+5+20+4+10 = 49
        check("utilization_rate", 28.57, 14, 49)
        # TTV: A 2025-12-01 -> 2026-01-20 = 50 d; B 2026-01-01 -> 02-15 = 45 d; F 02-01 -> 03-13 = 40 d: median 45
        check("onboarding_ttv_days_median", 45.0, None, 3)
        assert k["onboarding_ttv_days_median"]["details"]["samples"] == [40.0, 45.0, 50.0]
        # Go-live in the period: A (late: 01-20 > 01-15), B and F on time, D never: 2/4
        check("onboarding_success_rate", 50.0, 2, 4)
        # First responses: t1 2 h, t2 24 h, t3 0.5 h (t4 none): median 2 h
        check("ticket_first_response_hours_median", 2.0, None, 3)
        # Opened in the period t1..t4; resolved t1, t3: 2/4 (t0 opened before the period)
        check("ticket_resolution_rate", 50.0, 2, 4)

        # Restricted to the enterprise segment (A, B): no churn; GRR (3000-0-500)/3000, NRR 2700/3000.
        ent = (await reader.get("/v1/kpis", params={**PERIOD, "segment": "ent"})).json()
        assert (ent["grr"]["value"], ent["grr"]["numerator"], ent["grr"]["denominator"]) == (83.33, 2500, 3000)
        assert (ent["nrr"]["value"], ent["nrr"]["numerator"]) == (90.0, 2700)
        assert (ent["logo_churn_rate"]["value"], ent["logo_churn_rate"]["denominator"]) == (0.0, 2)
        # NPS of A and B only: 10,10,9 -> 3 promoters of 3 = 100
        assert (ent["nps"]["value"], ent["nps"]["denominator"]) == (100.0, 3)
        bob = (await reader.get("/v1/kpis", params={**PERIOD, "owner": "bob"})).json()
        # Owner bob: B, D, F. Seats 5+4+10 = 19, users 5+2+1 = 8
        assert (bob["utilization_rate"]["numerator"], bob["utilization_rate"]["denominator"]) == (8, 19)

        # An empty period: every rate has denominator 0 and value null.
        empty = (await reader.get("/v1/kpis", params={"from": "2020-01-01", "to": "2020-01-31"})).json()
        assert empty["nps"] == {**empty["nps"], "value": None, "denominator": 0}
        assert empty["grr"]["value"] is None and empty["ticket_first_response_hours_median"]["value"] is None
