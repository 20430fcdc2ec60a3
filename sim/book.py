"""A simulated book of business: accounts over months, with the facts a post-sales suite records.

``simulate()`` is pure and deterministic (same arguments, same book). Churn follows planted drivers
plus noise, so a churn model trained on the book can be checked against the truth:

- ``declining_usage``: from an onset date, the account's users log in less and less;
- ``detractor``: survey answers turn to detractor NPS (0-6) and poor CSAT;
- ``overdue_promises``: promises made at the handoff are delivered very late, or never;
- ``slow_support``: more tickets, answered only after one to five days.

At each renewal date an account churns with a probability that rises with the drivers active in the
months before it; an account with several drivers may also churn mid-term. A renewed account
recovers from each active driver with some probability. Every fact carries when it happened.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from decimal import Decimal

DRIVERS = ("declining_usage", "detractor", "overdue_promises", "slow_support")
# The model feature that measures each planted driver most directly.
DRIVER_FEATURES = {"declining_usage": "usage_trend_30d", "detractor": "nps_last",
                   "overdue_promises": "overdue_commitments", "slow_support": "slow_tickets_90d"}
SEGMENTS = (("enterprise", 0.15, (40, 90), 1500), ("mid_market", 0.35, (15, 35), 900), ("smb", 0.5, (6, 15), 600))
FEATURES = ("reports", "dashboards", "exports", "api", "alerts", "workflows", "sso", "integrations")
OWNERS = ("csm.aiko@vendor.example", "csm.ben@vendor.example", "csm.chloe@vendor.example", "csm.dai@vendor.example")
_WORDS_A = ("Acme", "Blue", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juniper", "Kestrel",
            "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer", "Quartz", "Ridge", "Summit", "Tidal")
_WORDS_B = ("Analytics", "Logistics", "Health", "Foods", "Systems", "Retail", "Energy", "Labs", "Media", "Finance")
PROMISES = ("SSO", "CRM sync", "Custom report", "Admin training", "Data import", "SLA review")
COMMITMENT_KINDS = ("integration", "customization", "training", "feature", "sla")
WINDOW_BEFORE_RENEWAL = 30  # a driver must be visible this many days before a decision to weigh on it
# Log-odds of churning: at a renewal, and each month in between (cancelling mid-term), plus each active driver.
WEIGHTS = {"declining_usage": 4.2, "detractor": 3.9, "overdue_promises": 3.6, "slow_support": 3.4}
RENEWAL_BASE = -4.0
MONTHLY_BASE = -6.5
# Small customers leave more easily than large ones, whatever their signals (the health score cannot see it).
SEGMENT_OFFSET = {"enterprise": -1.2, "mid_market": 0.0, "smb": 0.9}


@dataclass(frozen=True)
class Promise:
    key: str
    title: str
    kind: str
    due_date: dt.date
    delivered_at: dt.datetime | None  # None: never delivered (overdue once past due)


@dataclass
class SimAccount:
    id: str
    name: str
    segment: str
    plan: str
    seats: int
    users: list[str]
    arr: Decimal
    currency: str
    owner: str
    contract_start: dt.date
    renewal_date: dt.date  # the first renewal date (as sold)
    promises: list[Promise]
    drivers: dict[str, tuple[dt.date, dt.date | None]] = field(default_factory=dict)  # name -> [onset, end)
    go_live: dt.date | None = None
    churned_on: dt.date | None = None
    churn_kind: str | None = None  # "renewal" | "mid_term"

    def active(self, driver: str, day: dt.date) -> bool:
        span = self.drivers.get(driver)
        return span is not None and span[0] <= day and (span[1] is None or day < span[1])


@dataclass(frozen=True)
class Survey:
    account_id: str
    kind: str  # nps | csat
    score: int
    respondent: str
    at: dt.datetime


@dataclass(frozen=True)
class Ticket:
    account_id: str
    ticket_id: str
    opened_at: dt.datetime
    responded_at: dt.datetime | None
    resolved_at: dt.datetime | None


@dataclass(frozen=True)
class Touchpoint:
    account_id: str
    kind: str
    at: dt.datetime


@dataclass(frozen=True)
class Renewal:
    account_id: str
    renewal_date: dt.date
    outcome: str  # renewed | churned
    arr_before: Decimal
    arr_after: Decimal
    at: dt.datetime


@dataclass(frozen=True)
class Transition:
    account_id: str
    to: str
    reason: str
    at: dt.datetime


@dataclass
class Book:
    """Everything that happened to the accounts between ``start`` and ``today``."""

    today: dt.date
    start: dt.date
    seed: int
    accounts: list[SimAccount]
    usage: list[tuple[str, dt.date, str, str, int]]  # (account_id, day, user_id, feature, quantity)
    surveys: list[Survey]
    tickets: list[Ticket]
    touchpoints: list[Touchpoint]
    renewals: list[Renewal]
    transitions: list[Transition]

    @property
    def churned(self) -> list[SimAccount]:
        return [a for a in self.accounts if a.churned_on is not None]

    def summary(self) -> dict[str, int]:
        return {"accounts": len(self.accounts), "churned": len(self.churned), "usage_events": len(self.usage),
                "surveys": len(self.surveys), "tickets": len(self.tickets), "touchpoints": len(self.touchpoints),
                "renewals": len(self.renewals), "promises": sum(len(a.promises) for a in self.accounts)}


def _at(day: dt.date, rng: random.Random, lo: int = 8, hi: int = 18) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(rng.randint(lo, hi - 1), rng.randint(0, 59)), tzinfo=dt.UTC)


def _one_year_after(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def _new_account(i: int, rng: random.Random, start: dt.date, today: dt.date, users_per_account: int | None
                 ) -> SimAccount:
    r = rng.random()
    acc = 0.0
    segment, seats_range, price = SEGMENTS[-1][0], SEGMENTS[-1][2], SEGMENTS[-1][3]
    for name, share, sr, p in SEGMENTS:
        acc += share
        if r < acc:
            segment, seats_range, price = name, sr, p
            break
    seats = rng.randint(*seats_range)
    # Large customers buy ahead of adoption: more seats than users (low utilization, not a churn signal).
    shelf = (0.45, 0.9) if segment == "enterprise" else (0.7, 1.0)
    n_users = users_per_account or max(3, round(seats * rng.uniform(*shelf)))
    aid = f"sim-{i:04d}"
    contract_start = start + dt.timedelta(days=rng.randint(-300, max(1, (today - start).days - 150)))
    arr = Decimal(round(seats * price * rng.uniform(0.8, 1.25), -2)).quantize(Decimal("0.01"))
    promises = [Promise(key=f"p{k}", title=f"{rng.choice(PROMISES)} #{k + 1}",
                        kind=rng.choice(COMMITMENT_KINDS),
                        due_date=contract_start + dt.timedelta(days=rng.randint(30, 150)), delivered_at=None)
                for k in range(rng.randint(1, 3))]
    return SimAccount(id=aid, name=f"{rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)} {i}", segment=segment,
                      plan=rng.choice(("standard", "professional", "enterprise")), seats=seats,
                      users=[f"{aid}-u{u:02d}" for u in range(n_users)], arr=arr, currency="USD",
                      owner=rng.choice(OWNERS), contract_start=contract_start,
                      renewal_date=_one_year_after(contract_start), promises=promises)


def _plant(a: SimAccount, rng: random.Random, start: dt.date, today: dt.date, driver_rate: float) -> None:
    first = max(a.contract_start, start) + dt.timedelta(days=30)
    last = today - dt.timedelta(days=20)
    if first >= last:
        return
    for name, p in zip(DRIVERS, (1.0, 0.9, 0.8, 0.7), strict=True):
        if rng.random() < driver_rate * p:
            if name == "overdue_promises":
                onset = min(pr.due_date for pr in a.promises)
            else:
                onset = first + dt.timedelta(days=rng.randint(0, (last - first).days))
            a.drivers[name] = (onset, None)


def _decide_churn(a: SimAccount, rng: random.Random, start: dt.date, today: dt.date
                  ) -> list[tuple[dt.date, str, Decimal, Decimal]]:
    """Walk the months and the renewal dates: a monthly hazard of cancelling mid-term, and at each
    renewal churn or renew (recovering from some drivers). Returns the renewals."""
    out: list[tuple[dt.date, str, Decimal, Decimal]] = []
    arr = a.arr
    renewal = a.renewal_date
    day = max(a.contract_start, start) + dt.timedelta(days=30)
    while day <= today:
        if day >= renewal:
            seen = renewal - dt.timedelta(days=WINDOW_BEFORE_RENEWAL)
            score = RENEWAL_BASE + SEGMENT_OFFSET[a.segment] + rng.gauss(0, 0.6) + \
                sum(w for d, w in WEIGHTS.items() if a.active(d, seen))
            if rng.random() < 1 / (1 + math.exp(-score)):
                out.append((renewal, "churned", arr, Decimal("0.00")))
                a.churned_on, a.churn_kind = renewal, "renewal"
                return out
            after = (arr * Decimal(str(round(rng.uniform(0.95, 1.15), 2)))).quantize(Decimal("0.01"))
            out.append((renewal, "renewed", arr, after))
            arr = after
            for d in DRIVERS:  # customer success saves some of them
                span = a.drivers.get(d)
                if span is not None and a.active(d, seen) and rng.random() < 0.6:
                    a.drivers[d] = (span[0], renewal + dt.timedelta(days=rng.randint(10, 40)))
            renewal = _one_year_after(renewal)
        else:
            seen = day - dt.timedelta(days=WINDOW_BEFORE_RENEWAL)
            score = MONTHLY_BASE + SEGMENT_OFFSET[a.segment] + sum(w for d, w in WEIGHTS.items() if a.active(d, seen))
            if rng.random() < 1 / (1 + math.exp(-score)):
                a.churned_on, a.churn_kind = day, "mid_term"
                return out
        day = min(day + dt.timedelta(days=30), renewal) if renewal > day else day + dt.timedelta(days=30)
    return out


def simulate(*, accounts: int = 200, months: int = 18, seed: int = 7, today: dt.date | None = None,
             users_per_account: int | None = None, driver_rate: float = 0.2) -> Book:
    """A deterministic book of ``accounts`` over the ``months`` before ``today``.

    ``users_per_account`` fixes the number of users per account (default: about the seats, ~20 on
    average); ``driver_rate`` is the base probability of each churn driver appearing in an account.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    rng = random.Random(seed)
    start = today - dt.timedelta(days=round(months * 30.44))
    book = Book(today=today, start=start, seed=seed, accounts=[], usage=[], surveys=[], tickets=[], touchpoints=[],
                renewals=[], transitions=[])
    for i in range(1, accounts + 1):
        a = _new_account(i, rng, start, today, users_per_account)
        _plant(a, rng, start, today, driver_rate)
        _promises(a, rng, today)
        renewals = _decide_churn(a, rng, start, today)
        _drop_deliveries_after_churn(a)
        end = a.churned_on or today  # facts stop at churn (exclusive) or today (exclusive)
        book.accounts.append(a)
        for day, outcome, before, after in renewals:
            book.renewals.append(Renewal(a.id, day, outcome, before, after, _at(day, rng)))
        _lifecycle(a, rng, start, end, book)
        _usage(a, rng, max(a.contract_start, start), end, book)
        _feedback(a, rng, max(a.contract_start, start), end, book)
    return book


def _promises(a: SimAccount, rng: random.Random, today: dt.date) -> None:
    """Kept promises are delivered by their due date; broken ones very late or never, and the driver
    lasts while one is overdue."""
    broken = "overdue_promises" in a.drivers
    kept: list[Promise] = []
    for p in a.promises:
        if broken:
            late = rng.random() < 0.3
            delivered = _at(p.due_date + dt.timedelta(days=rng.randint(150, 300)), rng) if late else None
        else:
            delivered = _at(p.due_date - dt.timedelta(days=rng.randint(0, 20)), rng)
        if delivered is not None and delivered.date() >= today:
            delivered = None
        kept.append(Promise(p.key, p.title, p.kind, p.due_date, delivered))
    a.promises = kept
    if broken:
        overdue = [p for p in kept if p.delivered_at is None or p.delivered_at.date() > p.due_date]
        ends = [p.delivered_at.date() for p in overdue if p.delivered_at is not None]
        onset = min(p.due_date for p in overdue)
        a.drivers["overdue_promises"] = (onset, max(ends) if len(ends) == len(overdue) else None)


def _drop_deliveries_after_churn(a: SimAccount) -> None:
    if a.churned_on is None:
        return
    a.promises = [p if p.delivered_at is None or p.delivered_at.date() < a.churned_on
                  else Promise(p.key, p.title, p.kind, p.due_date, None) for p in a.promises]


def _lifecycle(a: SimAccount, rng: random.Random, start: dt.date, end: dt.date, book: Book) -> None:
    a.go_live = a.contract_start + dt.timedelta(days=rng.randint(60, 120))
    if a.go_live < end:
        book.transitions.append(Transition(a.id, "adoption", "go-live done", _at(a.go_live, rng)))
    if a.churn_kind == "mid_term":
        assert a.churned_on is not None
        book.transitions.append(Transition(a.id, "churned", "cancelled mid-term", _at(a.churned_on, rng)))
    # Touch cadence is the team's choice (tech-touch accounts see a CSM rarely), not a churn signal.
    cadence = (14, 45) if rng.random() < 0.6 else (45, 120)
    day = max(a.contract_start, start) + dt.timedelta(days=rng.randint(3, 20))
    while day < end:
        gap = rng.randint(*cadence)
        kind = rng.choice(("check_in", "check_in", "training", "qbr"))
        book.touchpoints.append(Touchpoint(a.id, kind, _at(day, rng)))
        day += dt.timedelta(days=gap)


def _usage(a: SimAccount, rng: random.Random, first: dt.date, end: dt.date, book: Book) -> None:
    # Activity is skewed to a few users: user k is active on a weekday with probability 0.9/(k+1).
    probs = [0.9 / (k + 1) for k in range(len(a.users))]
    onboarding_end = a.go_live or a.contract_start
    for day in _days(first, end):
        m = 1.0
        if day < onboarding_end:
            m = 0.4 + 0.6 * max(0.0, 1 - (onboarding_end - day).days / 90)
        span = a.drivers.get("declining_usage")
        if span is not None and a.active("declining_usage", day):
            m *= max(0.08, 1 - (day - span[0]).days / 50)
        if day.weekday() >= 5:
            m *= 0.25
        for user, p in zip(a.users, probs, strict=True):
            # Three draws whatever happens: the random stream (so the book) does not depend on the weekday.
            active, pick, qty = rng.random(), rng.expovariate(0.6), rng.expovariate(1 / 6)
            if active < p * m:
                book.usage.append((a.id, day, user, FEATURES[min(len(FEATURES) - 1, int(pick))], 1 + int(qty)))


def _feedback(a: SimAccount, rng: random.Random, first: dt.date, end: dt.date, book: Book) -> None:
    # NPS roughly every quarter from a couple of users; CSAT after some resolved tickets.
    day = first + dt.timedelta(days=rng.randint(20, 80))
    while day < end:
        for respondent in rng.sample(a.users, k=min(len(a.users), rng.randint(1, 2))):
            if a.active("detractor", day):
                score = rng.choice((0, 1, 2, 3, 4, 5, 6, 6, 7))
            else:
                score = rng.choice((6, 7, 8, 8, 9, 9, 10, 10))
            book.surveys.append(Survey(a.id, "nps", score, f"{respondent}@customer.example", _at(day, rng)))
        day += dt.timedelta(days=rng.randint(30, 75))
    n = 0
    day = first + dt.timedelta(days=rng.randint(1, 30))
    while day < end:
        slow = a.active("slow_support", day)
        opened = _at(day, rng, 0, 24)
        delay_h = rng.uniform(26, 120) if slow else rng.uniform(0.5, 16)
        responded: dt.datetime | None = opened + dt.timedelta(hours=delay_h)
        resolved: dt.datetime | None = opened + dt.timedelta(days=rng.uniform(1, 15 if slow else 6))
        limit = dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC)
        if responded is not None and responded >= limit:
            responded = None
        if resolved is not None and (resolved >= limit or responded is None):
            resolved = None
        n += 1
        book.tickets.append(Ticket(a.id, f"{a.id}-t{n:03d}", opened, responded, resolved))
        if resolved is not None and rng.random() < 0.4 and resolved + dt.timedelta(hours=2) < limit:
            score = rng.choice((1, 2, 2, 3, 3, 4)) if slow or a.active("detractor", day) else rng.choice((3, 4, 5, 5))
            book.surveys.append(Survey(a.id, "csat", score, f"{rng.choice(a.users)}@customer.example",
                                       resolved + dt.timedelta(hours=2)))
        day += dt.timedelta(days=max(1, int(rng.expovariate(1 / (12 if slow else 35)))))
