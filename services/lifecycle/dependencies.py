"""Dependencies shared by the lifecycle routers: scopes, the clock, settings, validated path ids."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Path

from services.lifecycle import clock
from services.lifecycle.accounts import repository as accounts_repo
from services.lifecycle.context import LifecycleContext
from services.lifecycle.models import Account, infra
from services.lifecycle.settings import Settings
from shared.app import SessionDep, get_ctx
from shared.app import SettingsDep as AppSettingsDep
from shared.auth import Principal, require
from shared.auth import actor_of as actor_of  # re-exported for the routers
from shared.errors import NotFound
from shared.http import Idempotency, idempotency_dependency

ReadScope = Annotated[Principal, Depends(require("lifecycle:read"))]
WriteScope = Annotated[Principal, Depends(require("lifecycle:write"))]
IdempotencyDep = Annotated[Idempotency, idempotency_dependency(infra.idempotency_keys)]

AccountIdPath = Annotated[str, Path(min_length=1, max_length=200, description="The account id.")]


LifecycleContextDep = Annotated[LifecycleContext, Depends(get_ctx)]


def current_time(ctx: LifecycleContextDep) -> dt.datetime:
    return clock.now(ctx)


NowDep = Annotated[dt.datetime, Depends(current_time)]
SettingsDep = AppSettingsDep[Settings]


async def valid_account(account_id: AccountIdPath, session: SessionDep) -> Account:
    account = await accounts_repo.get(session, account_id)
    if account is None:
        raise NotFound(f"account {account_id} does not exist")
    return account


async def valid_account_for_update(account_id: AccountIdPath, session: SessionDep) -> Account:
    """The account, row-locked (PostgreSQL) so that concurrent writes to it serialize."""
    account = await accounts_repo.get(session, account_id, lock=True)
    if account is None:
        raise NotFound(f"account {account_id} does not exist")
    return account


AccountDep = Annotated[Account, Depends(valid_account)]
LockedAccountDep = Annotated[Account, Depends(valid_account_for_update)]
