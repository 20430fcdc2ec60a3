"""Feed a simulated book into a running suite through its public APIs, with historical timestamps.

Per account: a handoff (with its promises) is created, submitted and accepted; lifecycle makes the
account; onboarding tasks are completed when they happened (`at`), which delivers the promises in
the handoff service; stage transitions, renewals and touchpoints are posted with `at`. Usage,
surveys and ticket events go to ``POST /v1/events`` in batches of 1000 with their event `time`.
An account whose handoff already exists (a second run) is skipped, so loading twice changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from sim.book import Book, SimAccount

log = logging.getLogger("sim.load")
BATCH = 1000


@dataclass
class Urls:
    handoff: str = "http://127.0.0.1:8001"
    lifecycle: str = "http://127.0.0.1:8002"
    metrics: str = "http://127.0.0.1:8003"
    notifier: str = "http://127.0.0.1:8004"


@dataclass
class LoadReport:
    accounts_loaded: int = 0
    accounts_skipped: int = 0
    events_posted: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)


def _iso(t: dt.datetime | dt.date) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _ce(type_: str, id_: str, source: str, subject: str, time: dt.datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": id_, "source": source, "type": type_, "subject": subject,
            "time": _iso(time), "datacontenttype": "application/json", "data": data}


def events(book: Book) -> list[dict[str, Any]]:
    """Usage, survey and ticket events of the book as CloudEvents (deterministic ids: re-posting dedups)."""
    out: list[dict[str, Any]] = []
    for account_id, day, user, feature, qty in book.usage:
        t = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
        out.append(_ce("usage.feature_used", f"{account_id}/{day}/{user}", "/sim/product", account_id, t,
                       {"user_id": user, "feature": feature, "quantity": qty}))
    for n, s in enumerate(book.surveys):
        out.append(_ce(f"postsales.survey.{s.kind}", f"{s.account_id}/survey/{n}", "/sim/surveys", s.account_id, s.at,
                       {"score": s.score, "respondent": s.respondent}))
    for ticket in book.tickets:
        for what, at in (("opened", ticket.opened_at), ("responded", ticket.responded_at),
                         ("resolved", ticket.resolved_at)):
            if at is not None:
                out.append(_ce(f"postsales.ticket.{what}", f"{ticket.ticket_id}/{what}", "/sim/helpdesk",
                               ticket.account_id, at, {"ticket_id": ticket.ticket_id}))
    return out


def handoff_body(a: SimAccount) -> dict[str, Any]:
    return {
        "account": {"external_id": a.id, "name": a.name, "segment": a.segment, "plan": a.plan, "seats": a.seats,
                    "arr": str(a.arr), "currency": a.currency, "contract_start": a.contract_start.isoformat(),
                    "renewal_date": a.renewal_date.isoformat()},
        "crm_opportunity_id": f"opp-{a.id}",
        "challenges": ["Manual reporting takes days"], "goals": ["Weekly reporting in minutes"],
        "proposal": f"{a.plan} plan, {a.seats} seats", "demo_notes": "Demoed dashboards and exports",
        "commitments": [{"title": p.title, "kind": p.kind, "due_date": p.due_date.isoformat(),
                         "description": f"Promised before signature ({p.key})"} for p in a.promises],
        "stakeholders": [{"name": f"Champion of {a.name}", "role": "champion", "email": f"champion@{a.id}.example"}],
        "risks": [], "presales_owner": "ae.sam@vendor.example", "postsales_owner": a.owner,
    }


class Loader:
    def __init__(self, book: Book, urls: Urls, token: str, *, concurrency: int = 8,
                 progress: Callable[[str], None] | None = None, client: httpx.AsyncClient | None = None) -> None:
        self.book, self.urls, self.token = book, urls, token
        self.sem = asyncio.Semaphore(concurrency)
        self.report = LoadReport()
        self.progress = progress or (lambda _msg: None)
        self._client = client

    async def _call(self, c: httpx.AsyncClient, method: str, url: str, *, ok: tuple[int, ...] = (200, 201, 202),
                    **kw: Any) -> httpx.Response:
        for attempt in range(8):
            try:
                r = await c.request(method, url, **kw)
            except httpx.TransportError:
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            self.report.requests += 1
            if r.status_code in (429, 503) or r.status_code >= 500:
                await asyncio.sleep(float(r.headers.get("Retry-After", 0.5 * (attempt + 1))))
                continue
            if r.status_code not in ok:
                raise RuntimeError(f"{method} {url} -> {r.status_code}: {r.text[:300]}")
            return r
        raise RuntimeError(f"{method} {url}: no answer after retries")

    async def run(self) -> LoadReport:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(headers=headers, timeout=60) as own:
            c = self._client or own
            c.headers.update(headers)
            done = 0
            total = len(self.book.accounts)

            async def one(a: SimAccount) -> None:
                nonlocal done
                async with self.sem:
                    try:
                        loaded = await self._account(c, a)
                    except Exception as exc:  # one broken account must not stop the rest of the import
                        self.report.errors.append(f"{a.id}: {exc}")
                        return
                    if loaded:
                        self.report.accounts_loaded += 1
                    else:
                        self.report.accounts_skipped += 1
                    done += 1
                    if done % 25 == 0 or done == total:
                        self.progress(f"accounts {done}/{total}")

            await asyncio.gather(*(one(a) for a in self.book.accounts))
            await self._events(c)
        return self.report

    async def _events(self, c: httpx.AsyncClient) -> None:
        evs = events(self.book)
        batches = [evs[i:i + BATCH] for i in range(0, len(evs), BATCH)]
        sem = asyncio.Semaphore(4)
        sent = 0

        async def post(batch: list[dict[str, Any]]) -> None:
            nonlocal sent
            async with sem:
                r = await self._call(c, "POST", f"{self.urls.metrics}/v1/events", json=batch)
                body = r.json()
                for rej in body.get("rejected", [])[:3]:
                    self.report.errors.append(f"event rejected: {rej}")
                sent += len(batch)
                self.report.events_posted += body.get("accepted", 0)
                if sent // 20_000 != (sent - len(batch)) // 20_000:
                    self.progress(f"events {sent}/{len(evs)}")

        await asyncio.gather(*(post(b) for b in batches))

    async def _account(self, c: httpx.AsyncClient, a: SimAccount) -> bool:
        u = self.urls
        r = await self._call(c, "POST", f"{u.handoff}/v1/handoffs", json=handoff_body(a), ok=(201, 409),
                             headers={"Idempotency-Key": f"sim-handoff-{a.id}"})
        if r.status_code == 409:
            return False
        handoff = r.json()
        hid = handoff["id"]
        await self._call(c, "POST", f"{u.handoff}/v1/handoffs/{hid}/submit")
        await self._call(c, "POST", f"{u.handoff}/v1/handoffs/{hid}/accept", json={"by": a.owner})
        by_title = {cm["title"]: cm["id"] for cm in handoff.get("commitments", [])}
        # lifecycle creates the account from the accepted handoff's event
        tasks: list[dict[str, Any]] = []
        for _ in range(600):
            r = await c.get(f"{u.lifecycle}/v1/accounts/{a.id}/tasks", params={"limit": 500})
            if r.status_code == 200:
                tasks = r.json()["items"]
                if len(tasks) >= len(a.promises):
                    break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"lifecycle never created account {a.id}")
        end = dt.datetime.combine(a.churned_on or self.book.today, dt.time(), tzinfo=dt.UTC)
        delivered = {by_title.get(p.title): p.delivered_at for p in a.promises}
        steps: list[tuple[dt.datetime, str, dict[str, Any]]] = []
        for t in tasks:
            if t.get("commitment_id"):
                at = delivered.get(t["commitment_id"])
            elif t.get("milestone") == "go_live" and a.go_live is not None:
                at = dt.datetime.combine(a.go_live, dt.time(10), tzinfo=dt.UTC)
            elif t.get("due_date"):
                at = dt.datetime.combine(dt.date.fromisoformat(t["due_date"]), dt.time(10), tzinfo=dt.UTC)
            else:
                at = None
            if at is not None and at < end:
                steps.append((at, "task", {"id": t["id"]}))
        for tr in (x for x in self.book.transitions if x.account_id == a.id):
            steps.append((tr.at, "transition", {"to": tr.to, "reason": tr.reason}))
        for rn in (x for x in self.book.renewals if x.account_id == a.id):
            steps.append((rn.at, "renewal", {"outcome": rn.outcome, "arr_before": str(rn.arr_before),
                                             "arr_after": str(rn.arr_after),
                                             "renewal_date": rn.renewal_date.isoformat()}))
        for tp in (x for x in self.book.touchpoints if x.account_id == a.id):
            steps.append((tp.at, "touchpoint", {"kind": tp.kind, "notes": "Simulated history"}))
        steps.sort(key=lambda s: (s[0], s[1] != "task"))
        base = f"{u.lifecycle}/v1/accounts/{a.id}"
        for at, kind, body in steps:
            when = _iso(at)
            if kind == "task":
                await self._call(c, "PATCH", f"{base}/tasks/{body['id']}", json={"status": "done", "at": when},
                                 ok=(200, 409))
            elif kind == "transition":
                # 409: the stage machine already moved (e.g. a renewal did it)
                await self._call(c, "POST", f"{base}/transitions", json={**body, "at": when}, ok=(201, 409))
            elif kind == "renewal":
                await self._call(c, "POST", f"{base}/renewals", json={**body, "at": when}, ok=(201, 409))
            else:
                await self._call(c, "POST", f"{base}/touchpoints", json={**body, "at": when})
        return True


async def load(book: Book, urls: Urls | None = None, *, token: str, concurrency: int = 8,
               progress: Callable[[str], None] | None = None) -> LoadReport:
    """Load ``book`` into the suite at ``urls`` (see the module doc)."""
    return await Loader(book, urls or Urls(), token, concurrency=concurrency, progress=progress).run()


async def wait_consumed(book: Book, urls: Urls, token: str, *, timeout: float = 600,
                        progress: Callable[[str], None] | None = None) -> bool:
    """Wait until metrics has counted the book's usage and renewals (its consumers run behind the import)."""
    expected: dict[str, float] = defaultdict(float)
    for account_id, _d, _u, _f, qty in book.usage:
        expected[account_id] += qty
    sample = sorted(expected)[:: max(1, len(expected) // 10)]
    since = book.today - dt.timedelta(days=364)
    renewals = len({r.account_id for r in book.renewals if r.renewal_date >= since})  # the KPI counts accounts due
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        while loop.time() < deadline:
            ok = True
            for account_id in sample:
                r = await c.get(f"{urls.metrics}/v1/accounts/{account_id}/usage",
                                params={"from": book.start.isoformat(), "to": book.today.isoformat()})
                got = sum(i["events"] for i in r.json().get("items", [])) if r.status_code == 200 else -1
                if abs(got - expected[account_id]) > 1e-6:
                    ok = False
                    break
            if ok:
                r = await c.get(f"{urls.metrics}/v1/kpis", params={"from": since.isoformat(),
                                                                   "to": book.today.isoformat()})
                if r.status_code != 200:
                    return True  # no way to count renewals here: the usage check has to do
                den = r.json().get("renewal_rate", {}).get("denominator")
                if den is not None and den >= renewals:
                    return True
            if progress:
                progress("waiting for metrics to count the imported history")
            await asyncio.sleep(2)
    return False
