"""Usage rollups and recompute."""

from __future__ import annotations

from fastapi import APIRouter

from services.metrics.dependencies import AccountId, AdminScope, FromDate, ReadScope, ToDate, period
from services.metrics.health.service import Policy, score_accounts
from services.metrics.usage import service
from services.metrics.usage.schemas import RecomputeIn, RecomputeOut, UsageOut
from shared.app import ContextDep, SessionDep
from shared.errors import problems

router = APIRouter(prefix="/v1", tags=["usage"])


@router.get("/accounts/{account_id}/usage", response_model=UsageOut, responses=problems())
async def get_usage(account_id: AccountId, session: SessionDep, _: ReadScope, from_date: FromDate = None,
                    to_date: ToDate = None) -> UsageOut:
    """Daily usage of an account: one row per UTC day with events (default: the last 30 days)."""
    start, end = period(from_date, to_date, default_days=30)
    items = await service.usage_between(session, account_id, start, end)
    return UsageOut(account_id=account_id, from_date=start, to_date=end, items=items)


@router.post("/recompute", response_model=RecomputeOut, responses=problems())
async def recompute(body: RecomputeIn, session: SessionDep, ctx: ContextDep, _: AdminScope) -> RecomputeOut:
    """Rebuild the period's rollups from the raw events, and re-score the accounts concerned."""
    counts, accounts = await service.rebuild_rollups(session, body.from_date, body.to_date, body.account_id)
    await score_accounts(session, ctx.outbox, sorted(accounts), policy=Policy.of(ctx.settings))
    return RecomputeOut(from_date=body.from_date, to_date=body.to_date, accounts=len(accounts), **counts)
