"""Dependencies shared by the routers: scopes, idempotency, settings, validated path ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from services.handoff.models import Handoff, infra
from services.handoff.settings import Settings
from shared.app import SessionDep
from shared.app import SettingsDep as AppSettingsDep
from shared.auth import Principal, require
from shared.auth import actor_of as actor_of  # re-exported for the routers
from shared.errors import NotFound
from shared.http import Idempotency, idempotency_dependency

ReadScope = Annotated[Principal, Depends(require("handoff:read"))]
WriteScope = Annotated[Principal, Depends(require("handoff:write"))]
IdempotencyDep = Annotated[Idempotency, idempotency_dependency(infra.idempotency_keys)]
HandoffId = Annotated[str, Path(max_length=36, description="The handoff id.")]
CommitmentId = Annotated[str, Path(max_length=36, description="The commitment id.")]


SettingsDep = AppSettingsDep[Settings]


async def valid_handoff_id(handoff_id: HandoffId, session: SessionDep, _: ReadScope) -> Handoff:
    # Requiring read access first means a token without it learns nothing, not even whether the id exists.
    handoff = await session.get(Handoff, handoff_id)
    if handoff is None:
        raise NotFound(f"handoff {handoff_id} does not exist")
    return handoff


ValidHandoff = Annotated[Handoff, Depends(valid_handoff_id)]
