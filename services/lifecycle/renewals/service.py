"""Renewal outcomes: renewed moves the renewal date (and renewal → adoption), churned churns."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.accounts import service as accounts
from services.lifecycle.events import emit
from services.lifecycle.models import Account, Renewal
from services.lifecycle.renewals.schemas import RenewalCreate
from shared.db import utcnow
from shared.errors import Conflict, Unprocessable


def one_year_after(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _invalid(field: str, msg: str) -> Unprocessable:
    return Unprocessable(f"{field}: {msg}", errors=[{"loc": ["body", field], "msg": msg}])


async def record(session: AsyncSession, account: Account, body: RenewalCreate, *, now: dt.datetime,
                 actor: str) -> Renewal:
    if account.stage == "churned":
        raise Conflict(f"account {account.id} is churned; no renewal can be recorded", stage=account.stage)
    arr_before = body.arr_before if body.arr_before is not None else account.arr
    if arr_before is None:
        raise _invalid("arr_before", "required: the account has no ARR")
    currency = body.currency or account.currency
    decided = body.renewal_date or account.renewal_date
    next_date: dt.date | None = None
    if body.outcome == "renewed":
        if body.arr_after is None:
            raise _invalid("arr_after", "required when renewed")
        arr_after = body.arr_after
        if body.new_renewal_date is not None:
            next_date = body.new_renewal_date
        elif decided is not None:
            next_date = one_year_after(decided)
        else:
            raise _invalid("new_renewal_date", "required: the account has no renewal date")
        if decided is not None and next_date <= decided:
            raise _invalid("new_renewal_date", f"must be after the renewal date {decided}")
    else:
        arr_after = body.arr_after if body.arr_after is not None else Decimal("0")
        if arr_after != 0:
            raise _invalid("arr_after", "must be 0 when churned")
        if body.new_renewal_date is not None:
            raise _invalid("new_renewal_date", "not allowed when churned")
    renewal = Renewal(id=str(uuid.uuid4()), account_id=account.id, outcome=body.outcome, arr_before=arr_before,
                      arr_after=arr_after, currency=currency, renewal_date=decided, next_renewal_date=next_date,
                      notes=body.notes, actor=actor, recorded_at=now)
    session.add(renewal)
    await session.flush()
    await emit(session, type="renewal.recorded", account_id=account.id, at=now, actor=actor,
               summary=f"Renewal {body.outcome}: ARR {arr_before} → {arr_after} {currency or ''}".rstrip(),
               data={"renewal_id": renewal.id, "outcome": body.outcome, "arr_before": arr_before,
                     "arr_after": arr_after, "currency": currency, "renewal_date": decided,
                     "next_renewal_date": next_date})
    if body.outcome == "renewed":
        previous = {"renewal_date": account.renewal_date, "arr": account.arr}
        account.renewal_date = next_date
        account.arr = arr_after
        if account.currency is None:
            account.currency = currency
        account.updated_at = utcnow()
        await session.flush()
        await emit(session, type="account.updated", account_id=account.id, at=now, actor=actor,
                   summary=f"Renewed until {next_date}",
                   data={**accounts.account_payload(account), "changed": ["renewal_date", "arr"],
                         "previous": previous})
        if account.stage == "renewal":
            await accounts.transition(session, account, "adoption", reason="renewed", actor=actor, now=now)
    else:
        await accounts.transition(session, account, "churned", reason=body.notes or "churned at renewal",
                                  actor=actor, now=now)
    return renewal
