"""The handoff service's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.handoff.commitments.endpoints import router as commitments_router
from services.handoff.consumers import consumer_specs
from services.handoff.documents.endpoints import router as documents_router
from services.handoff.feedback.endpoints import router as feedback_router
from services.handoff.handoffs.endpoints import router as handoffs_router
from services.handoff.models import infra
from services.handoff.scheduler import LOOPS
from services.handoff.settings import Settings
from shared.app import ServiceDefinition, create_service_app
from shared.events.registry import HANDOFF_TOPIC
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """\
Presales-to-postsales handoffs with a ledger of every promise made before the contract.

A handoff starts as a **draft** (only the account and the CRM opportunity are needed), is
**submitted** once its checklist is complete, and is **accepted** or **returned** by post-sales.
Each step is kept with who, when and why, and published on `postsales.handoff.v1`. Commitments are
tracked with owner, due date, status and evidence; lifecycle's completed tasks deliver them and an
overdue scan flags them at risk.
"""

TAGS = [
    {"name": "handoffs", "description": "Drafts, completeness and the submit/accept/return workflow."},
    {"name": "commitments", "description": "The ledger of promises: status, owner, due date, evidence, history."},
    {"name": "documents", "description": "The handoff document in Markdown or HTML, English or Japanese."},
    {"name": "feedback", "description": "Notes from post-sales back to presales."},
]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the handoff app; settings default to the environment."""
    s = Settings.resolve(settings)
    definition = ServiceDefinition(
        name="handoff",
        title="Handoff service",
        description=DESCRIPTION,
        infra=infra,
        routers=[handoffs_router, commitments_router, documents_router, feedback_router],
        consumers=consumer_specs,
        loops=LOOPS,
        produces=[HANDOFF_TOPIC],
        openapi_tags=TAGS,
    )
    return create_service_app(definition, s)
