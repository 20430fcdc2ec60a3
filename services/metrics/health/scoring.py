"""The health model: components, how each turns its inputs into 0-100, and how they combine.

Pure functions over gathered inputs, so the scorer, the API and the tests agree on one definition.
Every threshold is part of the (versioned) model. How unknown components count, and why, is in
``docs/health.md``: each is counted at ``min(unknown_value, mean of the known components)``, so
missing data never lifts a score above what the known data says nor above the neutral value, and a
fully known account scores exactly the weighted mean of its components.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.types import Int, Number

COMPONENTS = ("usage", "engagement", "sentiment", "support", "commitments", "renewal_proximity")
DEFAULT_WEIGHTS: dict[str, float] = {"usage": 30, "engagement": 15, "sentiment": 20, "support": 15,
                                     "commitments": 10, "renewal_proximity": 10}
DEFAULT_BANDS: dict[str, float] = {"green": 70, "yellow": 40}


class Thresholds(BaseModel):
    """The model's thresholds (every field has a default: a PUT may give only the ones it changes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usage_window_days: Int = Field(default=30, ge=1, le=365, description="Active users are counted over this window.")
    trend_window_days: Int = Field(default=14, ge=1, le=182,
                                   description="Usage trend: events in the last N days vs the N days before.")
    trend_share: Number = Field(default=0.2, ge=0, le=1,
                               description="Share of the usage component taken by the trend (the rest: utilization).")
    touchpoint_fresh_days: Number = Field(default=14, ge=0, le=3650,
                                         description="Engagement is 100 while the last touchpoint is this recent.")
    touchpoint_stale_days: Number = Field(default=90, gt=0, le=3650,
                                         description="... falling linearly to 0 at this age.")
    survey_window_days: Int = Field(default=180, ge=1, le=1096, description="Survey responses considered.")
    ticket_window_days: Int = Field(default=90, ge=1, le=1096,
                                    description="Tickets opened in this window (or still open) are considered.")
    slow_ticket_hours: Number = Field(default=24, gt=0, le=8760,
                                     description="A ticket is slow when its first response took longer than this "
                                                 "(or has not come after this long).")
    open_ticket_penalty: Number = Field(default=15, ge=0, le=100, description="Points off support per open ticket.")
    slow_ticket_penalty: Number = Field(default=20, ge=0, le=100, description="Points off support per slow ticket.")
    renewal_far_days: Int = Field(default=180, ge=0, le=3650, description="Renewal this far or further: 100.")
    renewal_mid_days: Int = Field(default=90, ge=0, le=3650, description="... this far or further: 80.")
    renewal_near_days: Int = Field(default=30, ge=0, le=3650,
                                   description="... this far or further: 60; closer: 40; overdue: 20.")
    unknown_value: Number = Field(default=50, ge=0, le=100, description=(
        "The neutral value: a component without data counts as the lower of this and the mean of the known "
        "components."))

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.touchpoint_fresh_days >= self.touchpoint_stale_days:
            raise ValueError("touchpoint_fresh_days must be below touchpoint_stale_days")
        if not self.renewal_far_days > self.renewal_mid_days > self.renewal_near_days:
            raise ValueError("renewal_far_days > renewal_mid_days > renewal_near_days is required")
        return self


DEFAULT_THRESHOLDS = Thresholds()


def descriptions(t: Thresholds) -> dict[str, str]:
    """What each component measures, with the model's thresholds filled in."""
    util = round(100 * (1 - t.trend_share))
    return {
        "usage": f"Utilization (distinct active users in the last {t.usage_window_days} days / seats, capped at "
                 f"100%) weighted {util}%, and its trend (events in the last {t.trend_window_days} days vs the "
                 f"{t.trend_window_days} before: 50 = flat) weighted {100 - util}%.",
        "engagement": f"Recency of the last touchpoint (the account's creation counts as one): 100 within "
                      f"{t.touchpoint_fresh_days:g} days, falling linearly to 0 at {t.touchpoint_stale_days:g} days.",
        "sentiment": f"Mean of NPS mapped to 0-100 ((NPS+100)/2) and CSAT (% scoring 4-5), last "
                     f"{t.survey_window_days} days.",
        "support": f"100 minus {t.open_ticket_penalty:g} per open ticket and {t.slow_ticket_penalty:g} per slow "
                   f"ticket (first response after {t.slow_ticket_hours:g} h, or none yet after "
                   f"{t.slow_ticket_hours:g} h), over tickets opened in the last {t.ticket_window_days} days or "
                   "still open; 100 when there is none.",
        "commitments": "Promises delivered on time / promises delivered or past due (waived ones excluded).",
        "renewal_proximity": f"Days to renewal: {t.renewal_far_days}+ -> 100, {t.renewal_mid_days}+ -> 80, "
                             f"{t.renewal_near_days}+ -> 60, 0+ -> 40, overdue -> 20.",
    }


DESCRIPTIONS = descriptions(DEFAULT_THRESHOLDS)


@dataclass
class Inputs:
    """What the scorer read about one account."""

    now: dt.datetime
    seats: int | None = None
    renewal_date: dt.date | None = None
    last_touchpoint_at: dt.datetime | None = None
    account_since: dt.datetime | None = None  # when the relationship began (contract start or first seen)
    has_usage: bool = False
    # Named for the default windows; they hold the model's usage and trend windows.
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


def usage(i: Inputs, t: Thresholds = DEFAULT_THRESHOLDS) -> Component:
    if not i.has_usage:
        return Component("usage", None, {}, "no usage events received for this account")
    change = (i.events_recent_14d - i.events_prior_14d) / max(i.events_prior_14d, 1.0)
    trend = _clamp(50 + 50 * max(-1.0, min(1.0, change)))
    inputs: dict[str, Any] = {"active_users": i.active_users_30d, "window_days": t.usage_window_days, "seats": i.seats,
                              "events_recent": i.events_recent_14d, "events_prior": i.events_prior_14d,
                              "trend_window_days": t.trend_window_days, "trend_score": round(trend, 2)}
    if i.seats:
        utilization = i.active_users_30d / i.seats
        inputs["utilization"] = round(utilization, 4)
        value = (1 - t.trend_share) * _clamp(utilization * 100) + t.trend_share * trend
        why = f"{i.active_users_30d} of {i.seats} seats active in {t.usage_window_days} days, trend score {trend:.0f}"
    else:
        value = trend
        why = f"seats unknown: trend only (score {trend:.0f})"
    return Component("usage", value, inputs, why)


def engagement(i: Inputs, t: Thresholds = DEFAULT_THRESHOLDS) -> Component:
    # The start of the relationship counts as a contact: a new account is fresh, an old one that nobody
    # has talked to is not "unknown" but stale; and logging a touchpoint can never lower engagement.
    present = [x for x in (i.last_touchpoint_at, i.account_since) if x is not None]
    if not present:
        return Component("engagement", None, {}, "no touchpoint logged and account creation unknown")
    last = max(present)
    days = max(0.0, (i.now - last).total_seconds() / 86400)
    fresh, stale = t.touchpoint_fresh_days, t.touchpoint_stale_days
    value = 100.0 if days <= fresh else _clamp(100 * (stale - days) / (stale - fresh))
    touched = i.last_touchpoint_at is not None and i.last_touchpoint_at >= last
    inputs: dict[str, Any] = {"last_touchpoint_at": i.last_touchpoint_at.isoformat() if i.last_touchpoint_at
                              else None, "days_since": round(days, 1)}
    if touched:
        return Component("engagement", value, inputs, f"last touchpoint {days:.0f} days ago")
    inputs["account_since"] = last.isoformat()
    return Component("engagement", value, inputs, f"no touchpoint since the account started {days:.0f} days ago")


def sentiment(i: Inputs, t: Thresholds = DEFAULT_THRESHOLDS) -> Component:
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
        return Component("sentiment", None, inputs, f"no survey response in the last {t.survey_window_days} days")
    return Component("sentiment", sum(parts) / len(parts), inputs,
                     ", ".join(f"{k.upper()} {inputs[k]}" for k in ("nps", "csat") if k in inputs))


def support(i: Inputs, t: Thresholds = DEFAULT_THRESHOLDS) -> Component:
    # Support measures trouble: no ticket is known good news (100), so a first ticket can only lower it.
    window = i.now - dt.timedelta(days=t.ticket_window_days)
    slow_after = dt.timedelta(hours=t.slow_ticket_hours)
    relevant = [x for x in i.tickets if x[2] is None or (x[0] is not None and x[0] >= window)]
    open_ = sum(1 for x in relevant if x[2] is None)
    slow = 0
    for opened, responded, _ in relevant:
        if opened is None:
            continue
        if (responded is not None and responded - opened > slow_after) or \
                (responded is None and i.now - opened > slow_after):
            slow += 1
    value = _clamp(100 - t.open_ticket_penalty * open_ - t.slow_ticket_penalty * slow)
    why = f"{open_} open, {slow} slow" if relevant else f"no ticket in the last {t.ticket_window_days} days"
    return Component("support", value, {"open_tickets": open_, "slow_tickets": slow, "tickets_considered":
                                        len(relevant)}, why)


def commitments(i: Inputs, t: Thresholds = DEFAULT_THRESHOLDS) -> Component:
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


def renewal_proximity(i: Inputs, t: Thresholds = DEFAULT_THRESHOLDS) -> Component:
    if i.renewal_date is None:
        return Component("renewal_proximity", None, {}, "renewal date unknown")
    days = (i.renewal_date - i.now.date()).days
    value = 100.0 if days >= t.renewal_far_days else 80.0 if days >= t.renewal_mid_days else \
        60.0 if days >= t.renewal_near_days else 40.0 if days >= 0 else 20.0
    return Component("renewal_proximity", value, {"renewal_date": i.renewal_date.isoformat(), "days_to_renewal": days},
                     f"renewal in {days} days" if days >= 0 else f"renewal overdue by {-days} days")


def components(i: Inputs, t: Thresholds = DEFAULT_THRESHOLDS) -> list[Component]:
    return [usage(i, t), engagement(i, t), sentiment(i, t), support(i, t), commitments(i, t),
            renewal_proximity(i, t)]


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
    band_reason: str | None = None


def combine(parts: list[Component], weights: dict[str, float], bands: dict[str, float], *,
            unknown_value: float = DEFAULT_THRESHOLDS.unknown_value, min_coverage: float = 0.0) -> Scored:
    """Score = sum over components of (weight / total weight) x value, where a component without data is
    counted at ``min(unknown_value, M)`` with M the weighted mean of the known ones.

    Hence: full coverage gives exactly the weighted mean; missing data never puts the score above M
    (what is known) nor above what counting it as neutral would; lowering any value, or adding one at
    or below ``min(score, unknown_value)``, never raises the score (proofs in docs/health.md).
    """
    total = sum(weights.values())
    known = [c for c in parts if c.known and weights[c.name] > 0]
    known_weight = sum(weights[c.name] for c in known)
    coverage = round(known_weight / total, 4) if total else 0.0
    if known_weight <= 0:
        out = [_component(c, weights[c.name], total, None) for c in parts]
        return Scored(None, None, 0.0, out, "no component has data yet")
    mean = sum(weights[c.name] * (c.value or 0.0) for c in known) / known_weight
    assumed = min(unknown_value, mean)
    out = [_component(c, weights[c.name], total, assumed) for c in parts]
    score = round(_clamp(sum(weights[c.name] / total * (c.value if c.known and c.value is not None else assumed)
                             for c in parts)), 1)
    if coverage < min_coverage:
        names = ", ".join(c.name for c in known)
        reason = (f"only {coverage:.0%} of the model's weight has data ({names}); a band needs at least "
                  f"{min_coverage:.0%} (METRICS_HEALTH_MIN_COVERAGE)")
        return Scored(score, None, coverage, out, reason)
    return Scored(score, band_of(score, bands), coverage, out, None)


def _component(c: Component, configured: float, total: float, assumed: float | None) -> dict[str, Any]:
    weight = configured / total if total else 0.0
    if c.known and configured > 0:
        assert c.value is not None
        return {"name": c.name, "status": "known", "value": round(c.value, 2), "assumed_value": None,
                "weight": round(weight, 4), "configured_weight": configured,
                "contribution": round(weight * c.value, 2), "inputs": c.inputs, "explanation": c.explanation}
    value = round(c.value, 2) if c.value is not None else None  # known but weightless: shown, not counted
    counted = assumed if assumed is not None and weight > 0 else None
    return {"name": c.name, "status": "known" if c.known else "unknown", "value": value,
            "assumed_value": round(counted, 2) if counted is not None and not c.known else None,
            "weight": round(weight, 4), "configured_weight": configured,
            "contribution": round(weight * counted, 2) if counted is not None and not c.known else 0.0,
            "inputs": c.inputs,
            "explanation": c.explanation if c.known else f"{c.explanation}: counted at {counted:.1f}"
            if counted is not None else c.explanation}
