"""The lifecycle service's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.lifecycle.accounts.endpoints import router as accounts_router
from services.lifecycle.consumers import consumer_specs
from services.lifecycle.context import startup
from services.lifecycle.models import infra
from services.lifecycle.opportunities.endpoints import router as opportunities_router
from services.lifecycle.playbooks.endpoints import router as playbooks_router
from services.lifecycle.renewals.endpoints import router as renewals_router
from services.lifecycle.scheduler import LOOPS
from services.lifecycle.settings import Settings
from services.lifecycle.tasks.endpoints import router as tasks_router
from services.lifecycle.tasks.endpoints import worklist_router
from services.lifecycle.timeline.endpoints import router as timeline_router
from services.lifecycle.touchpoints.endpoints import router as touchpoints_router
from shared.app import ServiceDefinition, create_service_app
from shared.events.registry import LIFECYCLE_TOPIC
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"

TAGS = [
    {"name": "accounts", "description": "Customer accounts and their stage machine "
                                        "(onboarding → adoption → expansion → renewal; churned from any)."},
    {"name": "tasks", "description": "Onboarding milestones, promised-commitment tasks and ad-hoc tasks."},
    {"name": "touchpoints", "description": "Check-ins, trainings, QBRs, EBRs."},
    {"name": "opportunities", "description": "Upsell and cross-sell opportunities."},
    {"name": "renewals", "description": "Renewal outcomes and upcoming renewals."},
    {"name": "timeline", "description": "Everything that happened to an account, newest first."},
    {"name": "playbooks", "description": "Plays: a matching event starts a run that puts tasks on the owner's "
                                         "worklist; stats say whether the play worked."},
]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the lifecycle app; settings default to the environment."""
    s = Settings.resolve(settings)
    definition = ServiceDefinition(
        name="lifecycle",
        title="Lifecycle service",
        description=(
            "Accounts from accepted handoffs, the stage machine, onboarding plans and tasks, touchpoints, "
            "opportunities, renewals (with renewal-window events), account timelines and playbooks. Consumes "
            "`postsales.handoff.v1`, `postsales.metrics.v1`, `postsales.feedback.v1`, `postsales.alerts.v1` and "
            "its own `postsales.lifecycle.v1`; produces `postsales.lifecycle.v1`."
        ),
        infra=infra,
        routers=[accounts_router, tasks_router, touchpoints_router, opportunities_router, renewals_router,
                 timeline_router, playbooks_router, worklist_router],
        consumers=consumer_specs,
        loops=LOOPS,
        produces=[LIFECYCLE_TOPIC],
        openapi_tags=TAGS,
        on_startup=startup,
    )
    return create_service_app(definition, s)
