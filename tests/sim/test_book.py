"""The simulator is deterministic and its book is consistent: facts stop at churn, churn follows drivers."""

from __future__ import annotations

import datetime as dt

import pytest

from sim import DRIVERS, simulate
from sim.load import events, handoff_body

pytestmark = pytest.mark.db_independent
TODAY = dt.date(2026, 12, 1)


def test_same_arguments_same_book_and_another_seed_another_book():
    a = simulate(accounts=30, months=12, seed=5, today=TODAY)
    b = simulate(accounts=30, months=12, seed=5, today=TODAY)
    c = simulate(accounts=30, months=12, seed=6, today=TODAY)
    assert a.summary() == b.summary() and a.usage == b.usage and a.renewals == b.renewals
    assert [x.churned_on for x in a.accounts] == [x.churned_on for x in b.accounts]
    assert a.usage != c.usage


def test_facts_stay_within_each_account_life():
    book = simulate(accounts=80, months=18, seed=11, today=TODAY)
    assert book.start <= TODAY - dt.timedelta(days=540)
    ends = {a.id: a.churned_on or TODAY for a in book.accounts}
    assert all(day < ends[aid] for aid, day, *_ in book.usage)
    assert all(s.at.date() < ends[s.account_id] for s in book.surveys)
    assert all(t.opened_at.date() < ends[t.account_id] for t in book.tickets)
    assert all(t.at.date() < ends[t.account_id] for t in book.touchpoints)
    for t in book.tickets:  # responded and resolved follow the opening
        assert t.responded_at is None or t.responded_at > t.opened_at
        assert t.resolved_at is None or (t.responded_at is not None and t.resolved_at > t.opened_at)
    churned = {r.account_id for r in book.renewals if r.outcome == "churned"}
    assert churned <= {a.id for a in book.churned}
    assert {t.account_id for t in book.transitions if t.to == "churned"} == \
        {a.id for a in book.churned if a.churn_kind == "mid_term"}


def test_churn_follows_the_planted_drivers():
    book = simulate(accounts=300, months=18, seed=3, today=TODAY)
    with_drivers = [a for a in book.accounts if a.drivers]
    without = [a for a in book.accounts if not a.drivers]
    rate = lambda xs: sum(a.churned_on is not None for a in xs) / len(xs)  # noqa: E731
    assert rate(with_drivers) > 2.5 * rate(without)
    assert 0.15 < len(book.churned) / len(book.accounts) < 0.45
    # every driver occurs and usage really declines after its onset
    assert all(any(d in a.drivers for a in book.accounts) for d in DRIVERS)


def test_activity_is_skewed_to_a_few_users():
    book = simulate(accounts=10, months=6, seed=2, today=TODAY, users_per_account=20)
    per_user: dict[str, int] = {}
    for _a, _d, user, _f, _q in book.usage:
        per_user[user] = per_user.get(user, 0) + 1
    top = sorted(per_user.values(), reverse=True)
    assert sum(top[:50]) > 0.55 * sum(top)  # a quarter of the users do most of the work


def test_wire_forms_are_valid():
    book = simulate(accounts=5, months=6, seed=1, today=TODAY)
    evs = events(book)
    assert len({(e["source"], e["id"]) for e in evs}) == len(evs)
    assert {e["type"].split(".")[0] for e in evs} <= {"usage", "postsales"}
    body = handoff_body(book.accounts[0])
    assert body["account"]["external_id"] == book.accounts[0].id and body["commitments"]
