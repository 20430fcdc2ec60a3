"""HTTP API of playbooks and their runs."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from services.lifecycle.dependencies import AccountDep, IdempotencyDep, NowDep, ReadScope, WriteScope, actor_of
from services.lifecycle.models import Playbook
from services.lifecycle.playbooks import repository as repo
from services.lifecycle.playbooks import runs, service
from services.lifecycle.playbooks.schemas import (
    PlaybookIn,
    PlaybookOut,
    PlaybookReplace,
    PlaybookRunOut,
    PlaybookStats,
    RunStart,
    RunStatus,
)
from shared.app import SessionDep
from shared.errors import NotFound, problems
from shared.http import Cursor, Limit, Page

router = APIRouter(tags=["playbooks"])

PlaybookIdPath = Annotated[str, Path(min_length=1, max_length=64, description="The playbook id.")]


async def valid_playbook(playbook_id: PlaybookIdPath, session: SessionDep) -> Playbook:
    playbook = await repo.get(session, playbook_id)
    if playbook is None:
        raise NotFound(f"playbook {playbook_id} does not exist")
    return playbook


PlaybookDep = Annotated[Playbook, Depends(valid_playbook)]
# Endpoints take their scope before PlaybookDep/AccountDep: FastAPI resolves dependencies in order, and a
# caller without the scope must get 403 before any lookup can tell it what exists (404).


@router.post("/v1/playbooks", status_code=201, response_model=PlaybookOut, responses=problems(409, 422))
async def create_playbook(body: PlaybookIn, _: WriteScope, session: SessionDep, idem: IdempotencyDep) -> PlaybookOut:
    """Create a playbook; 422 naming what could not be evaluated (e.g. an unknown event type)."""
    await idem.check(session)
    out = await service.create(session, body)
    await idem.save(session, 201, out)
    return out


@router.get("/v1/playbooks", response_model=Page[PlaybookOut])
async def list_playbooks(_: ReadScope, session: SessionDep, enabled: bool | None = None, limit: Limit = 50,
                         cursor: Cursor = None) -> Page[PlaybookOut]:
    """List playbooks, oldest first (the shipped defaults included)."""
    rows, nxt = await repo.page(session, enabled=enabled, cursor=cursor, limit=limit)
    return Page[PlaybookOut](items=[service.to_out(p) for p in rows], next_cursor=nxt)


@router.get("/v1/playbooks/{playbook_id}", response_model=PlaybookOut, responses=problems(404))
async def get_playbook(_: ReadScope, playbook: PlaybookDep) -> PlaybookOut:
    """Read one playbook (send it back with `PUT` to change it)."""
    return service.to_out(playbook)


@router.put("/v1/playbooks/{playbook_id}", response_model=PlaybookOut, responses=problems(404, 409, 422))
async def replace_playbook(_: WriteScope, body: PlaybookReplace, playbook: PlaybookDep,
                           session: SessionDep) -> PlaybookOut:
    """Replace a playbook; runs already started keep their tasks, new runs follow the new version."""
    return await service.replace(session, playbook, body)


@router.delete("/v1/playbooks/{playbook_id}", status_code=204, responses=problems(404))
async def delete_playbook(_: WriteScope, playbook: PlaybookDep, session: SessionDep) -> Response:
    """Delete a playbook; its runs stay as history and active ones finish with their tasks."""
    await service.delete(session, playbook)
    return Response(status_code=204)


@router.get("/v1/playbooks/{playbook_id}/stats", response_model=PlaybookStats, responses=problems(404))
async def playbook_stats(_: ReadScope, playbook: PlaybookDep, session: SessionDep) -> PlaybookStats:
    """Did it work: runs by status, median days to complete, how health and risk bands moved."""
    return await service.stats(session, playbook)


@router.post("/v1/playbooks/{playbook_id}/runs", status_code=201, response_model=PlaybookRunOut,
             responses=problems(404, 409))
async def start_run(principal: WriteScope, body: RunStart, playbook: PlaybookDep, session: SessionDep,
                    idem: IdempotencyDep, now: NowDep) -> PlaybookRunOut:
    """Start the play on an account by hand (409 while a run of it is active there, or the account churned)."""
    await idem.check(session)
    # The run's trigger id: a digest of who asked and their Idempotency-Key (any length fits the column).
    key = hashlib.sha256(f"{principal.key_id}:{idem.key}".encode()).hexdigest() if idem.key else str(uuid.uuid4())
    run = await runs.start_by_hand(session, playbook, body.account_id, key=key, now=now, actor=actor_of(principal))
    out = service.run_out(run)
    await idem.save(session, 201, out)
    return out


@router.get("/v1/playbooks/{playbook_id}/runs", response_model=Page[PlaybookRunOut], responses=problems(404))
async def playbook_runs(_: ReadScope, playbook: PlaybookDep, session: SessionDep, status: RunStatus | None = None,
                        limit: Limit = 50, cursor: Cursor = None) -> Page[PlaybookRunOut]:
    """The playbook's runs on every account, newest first."""
    rows, nxt = await repo.runs_page(session, playbook_id=playbook.id, status=status, cursor=cursor, limit=limit)
    return Page[PlaybookRunOut](items=[service.run_out(r) for r in rows], next_cursor=nxt)


@router.get("/v1/accounts/{account_id}/playbook-runs", response_model=Page[PlaybookRunOut],
            responses=problems(404))
async def account_playbook_runs(_: ReadScope, account: AccountDep, session: SessionDep,
                                status: RunStatus | None = None, limit: Limit = 50,
                                cursor: Cursor = None) -> Page[PlaybookRunOut]:
    """The playbook runs on the account, newest first."""
    rows, nxt = await repo.runs_page(session, account_id=account.id, status=status, cursor=cursor, limit=limit)
    return Page[PlaybookRunOut](items=[service.run_out(r) for r in rows], next_cursor=nxt)
