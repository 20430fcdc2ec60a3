"""KPIs over a period, exactly as DESIGN.md defines them (rates in percent).

Periods are inclusive UTC dates; an event belongs to the period when its time falls in
[from 00:00, to+1 00:00). ``segment``/``owner`` restrict to accounts with those facts.
"""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts import repository as facts_repo
from services.metrics.feedback import repository as feedback_repo
from services.metrics.kpis.schemas import Kpi, KpisOut
from services.metrics.models import Account
from services.metrics.usage import repository as usage_repo


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def rate(numerator: float | Decimal, denominator: float | Decimal, *, cap: float | None = None,
         **details: Any) -> Kpi:
    num, den = float(numerator), float(denominator)
    value = None if den == 0 else round(100 * num / den, 2)
    if value is not None and cap is not None:
        value = min(value, cap)
    return Kpi(value=value, numerator=num, denominator=den, unit="percent", details=details)


def median(samples: list[float], unit: str) -> Kpi:
    samples = sorted(round(s, 4) for s in samples)
    value = round(statistics.median(samples), 2) if samples else None
    return Kpi(value=value, numerator=None, denominator=len(samples), unit=unit,
               details={"samples": samples[:1000], "mean": round(statistics.fmean(samples), 2) if samples else None})


def _active_at(a: Account, at: dt.datetime) -> bool:
    return (a.created_at is None or a.created_at < at) and (a.churned_at is None or a.churned_at >= at)


def _active_during(a: Account, start: dt.datetime, end: dt.datetime) -> bool:
    return (a.created_at is None or a.created_at < end) and (a.churned_at is None or a.churned_at >= start)


async def compute(session: AsyncSession, start: dt.date, end: dt.date, segment: str | None,
                  owner: str | None) -> KpisOut:
    start_at, end_at = _at(start), _at(end + dt.timedelta(days=1))
    accounts = await facts_repo.accounts(session, segment=segment, owner=owner)
    by_id = {a.account_id: a for a in accounts}
    scope: set[str] | None = set(by_id) if segment is not None or owner is not None else None

    def in_scope(account_id: str) -> bool:
        return scope is None or account_id in scope

    # Surveys
    surveys = await feedback_repo.surveys_between(session, start_at, end_at, scope)
    nps = [s.score for s in surveys if s.kind == "nps"]
    promoters, detractors = sum(s >= 9 for s in nps), sum(s <= 6 for s in nps)
    csat = [s.score for s in surveys if s.kind == "csat"]
    satisfied = sum(s >= 4 for s in csat)

    # Renewals in the period: ARR up for renewal, churned, contraction, expansion
    renewals = [r for r in await facts_repo.renewals_between(session, start, end) if in_scope(r.account_id)]
    up = churned = contraction = expansion = Decimal(0)
    for r in renewals:
        before, after = Decimal(r.arr_before), Decimal(r.arr_after)
        up += before
        if r.outcome == "churned":
            churned += before
        else:
            contraction += max(Decimal(0), before - after)
            expansion += max(Decimal(0), after - before)
    retained = up - churned - contraction
    renewed_accounts = {r.account_id for r in renewals if r.outcome == "renewed"}
    due_accounts = {r.account_id for r in renewals} | {
        a.account_id for a in accounts if a.renewal_date is not None and start <= a.renewal_date <= end}

    # Logos: churn and expansion
    active_start = [a for a in accounts if _active_at(a, start_at)]
    churned_logos = [a for a in active_start if a.churned_at is not None and a.churned_at < end_at]
    active_period = {a.account_id for a in accounts if _active_during(a, start_at, end_at)}
    won = [o for o in await facts_repo.opportunities_won_between(session, start_at, end_at)
           if o.account_id in active_period]
    expanded = {o.account_id for o in won}
    won_arr = sum((Decimal(o.amount) for o in won), Decimal(0))
    starting_arr = sum((Decimal(a.arr) for a in active_start if a.arr is not None), Decimal(0))

    # Utilization over the 30 days ending `to`
    seated = [a for a in accounts if a.seats and a.account_id in active_period]
    users = await usage_repo.active_users(session, [a.account_id for a in seated], end - dt.timedelta(days=29), end)
    active_users = sum(users.values())
    seats = sum(a.seats or 0 for a in seated)

    # Onboarding
    onboardings = [a for a in await facts_repo.onboardings_between(session, start, end, start_at, end_at)
                   if in_scope(a.account_id)]
    ttv = [float((a.onboarding_completed_at.date() - a.contract_start).days) for a in onboardings
           if a.onboarding_completed_at is not None and a.contract_start is not None
           and start_at <= a.onboarding_completed_at < end_at]
    go_lives = [a for a in onboardings if a.planned_go_live is not None and start <= a.planned_go_live <= end]
    on_time = [a for a in go_lives if a.onboarding_completed_at is not None and a.planned_go_live is not None
               and a.onboarding_completed_at.date() <= a.planned_go_live]

    # Support
    tickets = await feedback_repo.tickets_opened_between(session, start_at, end_at, scope)
    response_hours = [(t.first_response_at - t.opened_at).total_seconds() / 3600 for t in tickets
                      if t.first_response_at is not None and t.opened_at is not None]
    resolved = [t for t in tickets if t.resolved_at is not None]

    return KpisOut(
        from_date=start, to_date=end, segment=segment, owner=owner,
        nps=Kpi(value=round(100 * (promoters - detractors) / len(nps), 2) if nps else None,
                numerator=promoters - detractors, denominator=len(nps), unit="score",
                details={"promoters": promoters, "passives": len(nps) - promoters - detractors,
                         "detractors": detractors}),
        csat=rate(satisfied, len(csat), mean=round(statistics.fmean(csat), 2) if csat else None),
        grr=rate(retained, up, cap=100.0, arr_up_for_renewal=str(up), churned_arr=str(churned),
                 contraction_arr=str(contraction)),
        nrr=rate(retained + expansion, up, arr_up_for_renewal=str(up), churned_arr=str(churned),
                 contraction_arr=str(contraction), expansion_arr=str(expansion)),
        renewal_rate=rate(len(renewed_accounts), len(due_accounts)),
        logo_churn_rate=rate(len(churned_logos), len(active_start)),
        expansion_rate=rate(len(expanded), len(active_period), won_opportunities=len(won)),
        expansion_arr_rate=rate(won_arr, starting_arr, expansion_arr=str(won_arr), starting_arr=str(starting_arr)),
        utilization_rate=rate(active_users, seats, window_from=str(end - dt.timedelta(days=29)), window_to=str(end),
                              accounts=len(seated)),
        onboarding_ttv_days_median=median(ttv, "days"),
        onboarding_success_rate=rate(len(on_time), len(go_lives)),
        ticket_first_response_hours_median=median(response_hours, "hours"),
        ticket_resolution_rate=rate(len(resolved), len(tickets)),
    )
