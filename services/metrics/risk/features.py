"""Point-in-time features of an account: what was known as of a moment, and nothing later.

Pure functions over an account's loaded history (:class:`History`). "As of ``t``" reads usage of the
UTC days up to ``t``'s, and facts whose time (``at`` / event ``time``; for a delivery, when it was
delivered) is on or before ``t``. Account attributes (renewal date, seats, ARR, segment) take the
latest value set on or before ``t``; before the first change that happened by ``t`` they take the
first value received (an imported account's values as sold, not what they became later).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from services.metrics.health.scoring import DEFAULT_BANDS, DEFAULT_WEIGHTS, Inputs, combine, components

NAN = float("nan")
SLOW = dt.timedelta(hours=24)
# Features in the order the model sees them; segment one-hots (``segment_<name>``) are appended.
BASE_FEATURES = (
    "usage_events_30d", "usage_trend_30d", "usage_trend_90d", "usage_vs_6m", "active_users_30d", "utilization",
    "health_usage", "health_engagement", "health_sentiment", "health_support", "health_commitments",
    "health_renewal_proximity", "nps_last", "csat_last", "open_tickets", "slow_tickets_90d",
    "overdue_commitments", "onboarding_progress", "days_to_renewal", "days_since_touchpoint", "log_arr",
)
DESCRIPTIONS = {
    "usage_events_30d": "log(1 + usage events in the last 30 days)",
    "usage_trend_30d": "usage events in the last 30 days vs the 30 before (-1 = stopped, 0 = flat, capped at +1)",
    "usage_trend_90d": "usage events in the last 90 days vs the 90 before (-1 .. +1)",
    "usage_vs_6m": "usage events in the last 30 days vs the monthly average of the 180 days before (-1 .. +1)",
    "active_users_30d": "distinct active users in the last 30 days",
    "utilization": "active users in the last 30 days / seats",
    "health_usage": "the health score's usage component (0-100) as of the date",
    "health_engagement": "the health score's engagement component (0-100)",
    "health_sentiment": "the health score's sentiment component (0-100)",
    "health_support": "the health score's support component (0-100)",
    "health_commitments": "the health score's commitments component (0-100)",
    "health_renewal_proximity": "the health score's renewal-proximity component (0-100)",
    "nps_last": "the latest NPS answer (0-10) within a year",
    "csat_last": "the latest CSAT answer (1-5) within a year",
    "open_tickets": "support tickets open",
    "slow_tickets_90d": "tickets of the last 90 days first answered after 24 h (or not yet, past 24 h)",
    "overdue_commitments": "promises past their due date and not delivered (nor waived)",
    "onboarding_progress": "1 once onboarding was completed, else 0",
    "days_to_renewal": "days until the next renewal date (capped to -30 .. 400)",
    "days_since_touchpoint": "days since the last touchpoint (capped at 180; 180 when none)",
    "log_arr": "log10(1 + ARR)",
}


@dataclass
class Fact:
    seq: int
    at: dt.datetime
    kind: str
    data: dict[str, Any]


@dataclass
class History:
    """Everything metrics knows about one account, with times."""

    account_id: str
    facts: list[Fact] = field(default_factory=list)  # in arrival order (seq)
    usage: dict[dt.date, float] = field(default_factory=dict)  # events per UTC day
    users: dict[dt.date, set[str]] = field(default_factory=dict)  # active users per UTC day
    surveys: list[tuple[dt.datetime, str, int]] = field(default_factory=list)  # (at, kind, score), by time
    tickets: list[tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]] = field(default_factory=list)
    current: dict[str, Any] = field(default_factory=dict)  # latest known values (from the accounts table)

    def __post_init__(self) -> None:
        self._days: list[dt.date] | None = None

    def usage_days(self) -> list[dt.date]:
        if self._days is None:
            self._days = sorted(self.usage)
        return self._days


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    return None


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def attribute(h: History, name: str, t: dt.datetime) -> Any:
    """An account attribute as of ``t`` (see the module doc)."""
    latest: tuple[dt.datetime, int, Any] | None = None
    first: Any = None
    for f in h.facts:
        if f.kind not in ("account", "handoff") or f.data.get(name) is None:
            continue
        if first is None:
            first = f.data[name]
        if f.at <= t and (latest is None or (f.at, f.seq) >= latest[:2]):
            latest = (f.at, f.seq, f.data[name])
    if latest is not None:
        return latest[2]
    return first if first is not None else h.current.get(name)


def churned_at(h: History) -> dt.datetime | None:
    """When the account churned: the stage moved to churned, or a renewal was recorded as churned."""
    times = [f.at for f in h.facts if f.kind == "stage" and f.data.get("to") == "churned"]
    times += [f.at for f in h.facts if f.kind in ("account", "handoff") and f.data.get("stage") == "churned"]
    for f in h.facts:
        if f.kind == "renewal" and f.data.get("outcome") == "churned":
            day = _date(f.data.get("renewal_date"))
            times.append(min(f.at, dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)) if day else f.at)
    return min(times) if times else None


def started_on(h: History) -> dt.date | None:
    """The first day the account is observed: its first usage (an imported history starts there, even
    when the contract is older), else its contract start, else its first fact."""
    days = h.usage_days()
    if days:
        return days[0]
    start = _date(attribute(h, "contract_start", dt.datetime.max.replace(tzinfo=dt.UTC)))
    if start is not None:
        return start
    return min(f.at for f in h.facts).date() if h.facts else None


def _window(h: History, end: dt.date, days: int) -> float:
    """Usage events in the ``days`` UTC days ending with ``end`` (inclusive)."""
    keys = h.usage_days()
    lo = bisect.bisect_left(keys, end - dt.timedelta(days=days - 1))
    hi = bisect.bisect_right(keys, end)
    return sum(h.usage[d] for d in keys[lo:hi])


def _active_users(h: History, end: dt.date, days: int = 30) -> int:
    keys = h.usage_days()
    lo = bisect.bisect_left(keys, end - dt.timedelta(days=days - 1))
    hi = bisect.bisect_right(keys, end)
    seen: set[str] = set()
    for d in keys[lo:hi]:
        seen |= h.users.get(d, set())
    return len(seen)


def _trend(recent: float, prior: float) -> float:
    if recent == 0 and prior == 0:
        return 0.0
    return max(-1.0, min(1.0, (recent - prior) / max(prior, 1.0)))


def _commitments(h: History, t: dt.datetime) -> list[tuple[str, dt.date | None, dt.datetime | None]]:
    """Each promise's (status, due date, delivered at) as of ``t``: a delivery counts from when it happened."""
    due: dict[str, tuple[dt.datetime, int, dt.date | None]] = {}
    first_due: dict[str, dt.date | None] = {}
    delivered: dict[str, dt.datetime] = {}
    waived: set[str] = set()
    for f in h.facts:
        items = f.data.get("commitments", []) if f.kind == "handoff" else [f.data] if f.kind == "commitment" else []
        for c in items:
            cid = str(c.get("id"))
            d = _date(c.get("due_date"))
            first_due.setdefault(cid, d)
            if f.at <= t and d is not None and (cid not in due or (f.at, f.seq) >= due[cid][:2]):
                due[cid] = (f.at, f.seq, d)
            if c.get("status") == "delivered":
                when = _time(c.get("delivered_at")) or f.at
                if when <= t:
                    delivered[cid] = min(when, delivered.get(cid, when))
            elif c.get("status") == "waived" and f.at <= t:
                waived.add(cid)
    out = []
    for cid, first in first_due.items():
        status = "waived" if cid in waived else "delivered" if cid in delivered else "open"
        out.append((status, due[cid][2] if cid in due else first, delivered.get(cid)))
    return out


def next_renewal(h: History, t: dt.datetime) -> dt.date | None:
    value = _date(attribute(h, "renewal_date", t))
    # A renewal recorded on or before t for that date already moved it (when its account fact is missing).
    for f in h.facts:
        if f.kind == "renewal" and f.at <= t and f.data.get("outcome") == "renewed" and value is not None \
                and _date(f.data.get("renewal_date")) == value and _date(f.data.get("next_renewal_date")):
            value = _date(f.data.get("next_renewal_date"))
    return value


def inputs_at(h: History, t: dt.datetime) -> Inputs:
    """The health model's inputs as of ``t`` (the health score the account would have had then)."""
    day = t.date()
    touch = [f.at for f in h.facts if f.kind == "touchpoint" and f.at <= t]
    since = t - dt.timedelta(days=180)
    tickets: list[tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]] = []
    for opened, responded, resolved in h.tickets:
        if opened is None or opened > t:
            continue
        tickets.append((opened, responded if responded is not None and responded <= t else None,
                        resolved if resolved is not None and resolved <= t else None))
    seats = _num(attribute(h, "seats", t))
    keys = h.usage_days()
    return Inputs(
        now=t, seats=int(seats) if seats else None, renewal_date=next_renewal(h, t),
        last_touchpoint_at=max(touch) if touch else None,
        has_usage=bool(keys) and keys[0] <= day,
        active_users_30d=_active_users(h, day),
        events_recent_14d=_window(h, day, 14), events_prior_14d=_window(h, day - dt.timedelta(days=14), 14),
        nps_scores=[s for at, k, s in h.surveys if k == "nps" and since <= at <= t],
        csat_scores=[s for at, k, s in h.surveys if k == "csat" and since <= at <= t],
        tickets=tickets, commitments=_commitments(h, t), as_of=t,
    )


def health_score(i: Inputs) -> float | None:
    """The default health model's score for these inputs (the backtest's baseline)."""
    return combine(components(i), DEFAULT_WEIGHTS, DEFAULT_BANDS).score


def features_at(h: History, t: dt.datetime) -> tuple[dict[str, float], float | None]:
    """The account's features as of ``t`` (NaN where unknown) and its health score then."""
    day = t.date()
    i = inputs_at(h, t)
    parts = components(i)
    health = combine(parts, DEFAULT_WEIGHTS, DEFAULT_BANDS).score
    f: dict[str, float] = {}
    recent30 = _window(h, day, 30)
    f["usage_events_30d"] = math.log1p(recent30)
    f["usage_trend_30d"] = _trend(recent30, _window(h, day - dt.timedelta(days=30), 30))
    f["usage_trend_90d"] = _trend(_window(h, day, 90), _window(h, day - dt.timedelta(days=90), 90))
    f["usage_vs_6m"] = _trend(recent30, _window(h, day - dt.timedelta(days=30), 180) / 6)
    f["active_users_30d"] = float(i.active_users_30d)
    f["utilization"] = min(2.0, i.active_users_30d / i.seats) if i.seats else NAN
    for c in parts:
        f[f"health_{c.name}"] = c.value if c.value is not None else NAN
    year = t - dt.timedelta(days=365)
    nps = [s for at, k, s in h.surveys if k == "nps" and year <= at <= t]
    csat = [s for at, k, s in h.surveys if k == "csat" and year <= at <= t]
    f["nps_last"] = float(nps[-1]) if nps else NAN
    f["csat_last"] = float(csat[-1]) if csat else NAN
    open_ = slow = 0
    window = t - dt.timedelta(days=90)
    for opened, responded, resolved in i.tickets:
        if opened is None:
            continue
        if resolved is None:
            open_ += 1
        if opened >= window and ((responded is not None and responded - opened > SLOW)
                                 or (responded is None and t - opened > SLOW)):
            slow += 1
    f["open_tickets"] = float(open_)
    f["slow_tickets_90d"] = float(slow)
    f["overdue_commitments"] = float(sum(1 for status, due, _ in i.commitments
                                         if status == "open" and due is not None and due < day))
    f["onboarding_progress"] = 1.0 if any(f_.kind == "onboarding" and f_.at <= t for f_ in h.facts) else 0.0
    f["days_to_renewal"] = float(max(-30, min(400, (i.renewal_date - day).days))) if i.renewal_date else NAN
    f["days_since_touchpoint"] = min(180.0, (t - i.last_touchpoint_at).total_seconds() / 86400) \
        if i.last_touchpoint_at else 180.0
    arr = _num(attribute(h, "arr", t))
    f["log_arr"] = math.log10(1 + arr) if arr is not None and arr >= 0 else NAN
    segment = attribute(h, "segment", t)
    if segment:
        f[f"segment_{segment}"] = 1.0
    return f, health


def vector(features: dict[str, float], names: list[str]) -> list[float]:
    """The features in ``names`` order; a segment one-hot missing from the dict is 0, anything else NaN."""
    return [features.get(n, 0.0 if n.startswith("segment_") else NAN) for n in names]


def end_of(day: dt.date) -> dt.datetime:
    """A snapshot dated ``day`` sees everything up to the end of that UTC day."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) - dt.timedelta(microseconds=1)
