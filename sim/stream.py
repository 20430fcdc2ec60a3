"""The events a suite emits when a book is loaded with ``sim.load``, without running the suite.

``fact_events`` mirrors what the handoff and lifecycle services publish during an import made at
``imported_at`` (accounts appear then; everything that happened carries its own time), so metrics'
consumers can be fed directly in fast tests and benchmarks. ``sim.load.events`` gives the usage,
survey and ticket events.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sim.book import Book, SimAccount, _one_year_after
from sim.load import _ce


def _account_data(a: SimAccount, **over: Any) -> dict[str, Any]:
    return {"account_id": a.id, "name": a.name, "stage": "onboarding", "owner": a.owner, "segment": a.segment,
            "plan": a.plan, "seats": a.seats, "arr": str(a.arr), "currency": a.currency,
            "contract_start": a.contract_start.isoformat(), "renewal_date": a.renewal_date.isoformat(), **over}


def fact_events(book: Book, imported_at: dt.datetime) -> list[dict[str, Any]]:
    """Handoff and lifecycle events of an import of ``book`` at ``imported_at``, in publication order."""
    out: list[dict[str, Any]] = []
    hs, lc = "/services/handoff", "/services/lifecycle"
    n = 0

    def ev(type_: str, source: str, a: SimAccount, time: dt.datetime, data: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        out.append(_ce(type_, f"sim-{n}", source, a.id, time, data))

    for a in book.accounts:
        commitments = [{"id": f"{a.id}-{p.key}", "title": p.title, "kind": p.kind, "status": "open",
                        "due_date": p.due_date.isoformat()} for p in a.promises]
        ev("postsales.handoff.accepted", hs, a, imported_at, {
            "handoff_id": f"h-{a.id}", "crm_opportunity_id": f"opp-{a.id}", "status": "accepted",
            "postsales_owner": a.owner, "commitments": commitments,
            "account": {"external_id": a.id, "name": a.name, "segment": a.segment, "plan": a.plan, "seats": a.seats,
                        "arr": str(a.arr), "currency": a.currency, "contract_start": a.contract_start.isoformat(),
                        "renewal_date": a.renewal_date.isoformat()}})
        ev("postsales.account.created", lc, a, imported_at, _account_data(a))
        steps: list[tuple[dt.datetime, str, dict[str, Any]]] = []
        end = dt.datetime.combine(a.churned_on or book.today, dt.time(), tzinfo=dt.UTC)
        if a.go_live is not None:
            go = dt.datetime.combine(a.go_live, dt.time(10), tzinfo=dt.UTC)
            if go < end:
                steps.append((go, "postsales.onboarding.completed", {
                    "account_id": a.id, "completed_at": go.isoformat(), "planned_go_live": a.go_live.isoformat(),
                    "contract_start": a.contract_start.isoformat()}))
        for tr in (t for t in book.transitions if t.account_id == a.id):
            steps.append((tr.at, "postsales.account.stage_changed", {
                "account_id": a.id, "from": "adoption" if tr.to == "churned" else "onboarding", "to": tr.to,
                "reason": tr.reason}))
        for tp in (t for t in book.touchpoints if t.account_id == a.id):
            steps.append((tp.at, "postsales.touchpoint.logged", {"account_id": a.id, "kind": tp.kind,
                                                                 "at": tp.at.isoformat()}))
        arr = a.arr
        for r in (x for x in book.renewals if x.account_id == a.id):
            nxt = _one_year_after(r.renewal_date) if r.outcome == "renewed" else None
            steps.append((r.at, "postsales.renewal.recorded", {
                "account_id": a.id, "outcome": r.outcome, "arr_before": str(r.arr_before),
                "arr_after": str(r.arr_after), "currency": a.currency, "renewal_date": r.renewal_date.isoformat(),
                "next_renewal_date": nxt.isoformat() if nxt else None}))
            if nxt is not None:
                arr = r.arr_after
                steps.append((r.at, "postsales.account.updated", _account_data(
                    a, stage="adoption", arr=str(arr), renewal_date=nxt.isoformat())))
            else:
                steps.append((r.at, "postsales.account.stage_changed", {"account_id": a.id, "from": "adoption",
                                                                        "to": "churned", "reason": "renewal"}))
        steps.sort(key=lambda s: s[0])
        for time, type_, data in steps:
            ev(type_, lc, a, time, data)
        for p in a.promises:
            if p.delivered_at is not None and p.delivered_at < end:
                ev("postsales.commitment.updated", hs, a, imported_at, {
                    "handoff_id": f"h-{a.id}", "commitment_id": f"{a.id}-{p.key}", "title": p.title,
                    "status": "delivered", "previous_status": "open", "due_date": p.due_date.isoformat(),
                    "delivered_at": p.delivered_at.isoformat(), "account_id": a.id})
    return out
