"""The health model: components, how each turns its inputs into 0-100, and how they combine.

Pure functions over gathered inputs, so the scorer, the API and the tests agree on one definition.
A component without data is "unknown": it is left out and the known weights are renormalised.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

COMPONENTS = ("usage", "engagement", "sentiment", "support", "commitments", "renewal_proximity")
DEFAULT_WEIGHTS: dict[str, float] = {"usage": 30, "engagement": 15, "sentiment": 20, "support": 15,
                                     "commitments": 10, "renewal_proximity": 10}
DEFAULT_BANDS: dict[str, float] = {"green": 70, "yellow": 40}
DESCRIPTIONS = {
    "usage": "Utilization (distinct active users in the last 30 days / seats, capped at 100%) weighted 80%, "
             "and its trend (events in the last 14 days vs the 14 before: 50 = flat) weighted 20%.",
    "engagement": "Recency of the last touchpoint: 100 within 14 days, falling linearly to 0 at 90 days.",
    "sentiment": "Mean of NPS mapped to 0-100 ((NPS+100)/2) and CSAT (% scoring 4-5), last 180 days.",
    "support": "100 minus 15 per open ticket and 20 per slow ticket (first response after 24 h, or none yet "
               "after 24 h), over tickets opened in the last 90 days or still open.",
    "commitments": "Promises delivered on time / promises delivered or past due (waived ones excluded).",
    "renewal_proximity": "Days to renewal: 180+ -> 100, 90-179 -> 80, 30-89 -> 60, 0-29 -> 40, overdue -> 20.",
}
SLOW_HOURS = 24


@dataclass
class Inputs:
    """What the scorer read about one account."""

    now: dt.datetime
    seats: int | None = None
    renewal_date: dt.date | None = None
    last_touchpoint_at: dt.datetime | None = None
    has_usage: bool = False
    active_users_30d: int = 0
    events_recent_14d: float = 0.0
    events_prior_14d: float = 0.0
    nps_scores: list[int] = field(default_factory=list)
    csat_scores: list[int] = field(default_factory=list)
    tickets: list[tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]] = field(default_factory=list)
    commitments: list[tuple[str, dt.date | None, dt.datetime | None]] = field(default_factory=list)
    as_of: dt.datetime | None = None


@dataclass
class Component:
    name: str
    value: float | None
    inputs: dict[str, Any]
    explanation: str

    @property
    def known(self) -> bool:
        return self.value is not None


def _clamp(x: float, lo: float = 0.0, hi: float = 100.0) -> float:
    return max(lo, min(hi, x))


def usage(i: Inputs) -> Component:
    if not i.has_usage:
        return Component("usage", None, {}, "no usage events received for this account")
    change = (i.events_recent_14d - i.events_prior_14d) / max(i.events_prior_14d, 1.0)
    trend = _clamp(50 + 50 * max(-1.0, min(1.0, change)))
    inputs: dict[str, Any] = {"active_users_30d": i.active_users_30d, "seats": i.seats,
                              "events_last_14d": i.events_recent_14d, "events_prior_14d": i.events_prior_14d,
                              "trend_score": round(trend, 2)}
    if i.seats:
        utilization = i.active_users_30d / i.seats
        inputs["utilization"] = round(utilization, 4)
        value = 0.8 * _clamp(utilization * 100) + 0.2 * trend
        why = f"{i.active_users_30d} of {i.seats} seats active in 30 days, trend score {trend:.0f}"
    else:
        value = trend
        why = f"seats unknown: trend only (score {trend:.0f})"
    return Component("usage", value, inputs, why)


def engagement(i: Inputs) -> Component:
    if i.last_touchpoint_at is None:
        return Component("engagement", None, {}, "no touchpoint logged")
    days = max(0.0, (i.now - i.last_touchpoint_at).total_seconds() / 86400)
    value = 100.0 if days <= 14 else _clamp(100 * (90 - days) / 76)
    return Component("engagement", value, {"last_touchpoint_at": i.last_touchpoint_at.isoformat(),
                                            "days_since": round(days, 1)},
                     f"last touchpoint {days:.0f} days ago")


def sentiment(i: Inputs) -> Component:
    parts: list[float] = []
    inputs: dict[str, Any] = {"nps_responses": len(i.nps_scores), "csat_responses": len(i.csat_scores)}
    if i.nps_scores:
        n = len(i.nps_scores)
        nps = 100 * (sum(s >= 9 for s in i.nps_scores) - sum(s <= 6 for s in i.nps_scores)) / n
        inputs["nps"] = round(nps, 2)
        parts.append((nps + 100) / 2)
    if i.csat_scores:
        csat = 100 * sum(s >= 4 for s in i.csat_scores) / len(i.csat_scores)
        inputs["csat"] = round(csat, 2)
        parts.append(csat)
    if not parts:
        return Component("sentiment", None, inputs, "no survey response in the last 180 days")
    return Component("sentiment", sum(parts) / len(parts), inputs,
                     ", ".join(f"{k.upper()} {inputs[k]}" for k in ("nps", "csat") if k in inputs))


def support(i: Inputs) -> Component:
    window = i.now - dt.timedelta(days=90)
    slow_after = dt.timedelta(hours=SLOW_HOURS)
    relevant = [t for t in i.tickets if t[2] is None or (t[0] is not None and t[0] >= window)]
    if not i.tickets:
        return Component("support", None, {}, "no support tickets")
    open_ = sum(1 for t in relevant if t[2] is None)
    slow = 0
    for opened, responded, _ in relevant:
        if opened is None:
            continue
        if (responded is not None and responded - opened > slow_after) or \
                (responded is None and i.now - opened > slow_after):
            slow += 1
    value = _clamp(100 - 15 * open_ - 20 * slow)
    return Component("support", value, {"open_tickets": open_, "slow_tickets": slow, "tickets_considered":
                                        len(relevant)}, f"{open_} open, {slow} slow")


def commitments(i: Inputs) -> Component:
    today = i.now.date()
    on_time = late = overdue = pending = 0
    for status, due, delivered_at in i.commitments:
        if status == "waived":
            continue
        if status == "delivered":
            if due is None or delivered_at is None or delivered_at.date() <= due:
                on_time += 1
            else:
                late += 1
        elif due is not None and due < today:
            overdue += 1
        else:
            pending += 1
    considered = on_time + late + overdue
    inputs = {"delivered_on_time": on_time, "delivered_late": late, "overdue": overdue, "not_yet_due": pending}
    if not considered:
        return Component("commitments", None, inputs, "no commitment delivered or due yet")
    return Component("commitments", 100 * on_time / considered, inputs,
                     f"{on_time} of {considered} delivered on time")


def renewal_proximity(i: Inputs) -> Component:
    if i.renewal_date is None:
        return Component("renewal_proximity", None, {}, "renewal date unknown")
    days = (i.renewal_date - i.now.date()).days
    value = 100.0 if days >= 180 else 80.0 if days >= 90 else 60.0 if days >= 30 else 40.0 if days >= 0 else 20.0
    return Component("renewal_proximity", value, {"renewal_date": i.renewal_date.isoformat(), "days_to_renewal": days},
                     f"renewal in {days} days" if days >= 0 else f"renewal overdue by {-days} days")


def components(i: Inputs) -> list[Component]:
    return [usage(i), engagement(i), sentiment(i), support(i), commitments(i), renewal_proximity(i)]


def band_of(score: float | None, bands: dict[str, float]) -> str | None:
    if score is None:
        return None
    if score >= bands["green"]:
        return "green"
    return "yellow" if score >= bands["yellow"] else "red"


@dataclass
class Scored:
    score: float | None
    band: str | None
    coverage: float
    components: list[dict[str, Any]]


def combine(parts: list[Component], weights: dict[str, float], bands: dict[str, float]) -> Scored:
    """Weighted mean of the known components (weights renormalised over them)."""
    total = sum(weights.values())
    known_weight = sum(weights[c.name] for c in parts if c.known)
    out: list[dict[str, Any]] = []
    score = 0.0
    for c in parts:
        configured = weights[c.name]
        if c.known and known_weight > 0:
            assert c.value is not None
            weight = configured / known_weight
            contribution = weight * c.value
            score += contribution
            out.append({"name": c.name, "status": "known", "value": round(c.value, 2), "weight": round(weight, 4),
                        "configured_weight": configured, "contribution": round(contribution, 2),
                        "inputs": c.inputs, "explanation": c.explanation})
        else:
            out.append({"name": c.name, "status": "unknown", "value": None, "weight": 0.0,
                        "configured_weight": configured, "contribution": 0.0, "inputs": c.inputs,
                        "explanation": c.explanation})
    final = round(score, 1) if known_weight > 0 else None
    coverage = round(known_weight / total, 4) if total else 0.0
    return Scored(final, band_of(final, bands), coverage, out)
