"""The metrics service's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.metrics.consumers import consumer_specs
from services.metrics.health.endpoints import router as health_router
from services.metrics.ingest.endpoints import router as ingest_router
from services.metrics.kpis.endpoints import router as kpis_router
from services.metrics.models import infra
from services.metrics.risk.endpoints import router as risk_router
from services.metrics.risk.scheduler import RISK_LOOP
from services.metrics.scheduler import LOOPS
from services.metrics.settings import Settings
from services.metrics.usage.endpoints import router as usage_router
from shared.app import ServiceDefinition, create_service_app
from shared.events.registry import FEEDBACK_TOPIC, METRICS_TOPIC, USAGE_TOPIC
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """Usage ingestion at volume, surveys and support tickets, daily rollups, KPIs and
explainable account health scores, and a backtested, explainable churn-risk model.

Usage and feedback events arrive on `postsales.usage.v1` / `postsales.feedback.v1` or through
`POST /v1/events`; a usage event is counted once per (`source`, `id`), in the UTC day it happened.
"""

TAGS = [
    {"name": "ingest", "description": "Event and survey ingestion."},
    {"name": "usage", "description": "Daily usage rollups and their rebuild from raw events."},
    {"name": "kpis", "description": "Post-sales KPIs with numerators and denominators."},
    {"name": "health", "description": "Explainable health scores and the health model."},
    {"name": "risk", "description": "Churn risk: a backtested, explainable model and the at-risk worklist."},
]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the metrics app; settings default to the environment."""
    s = Settings.resolve(settings)
    definition = ServiceDefinition(
        name="metrics",
        title="Metrics service",
        description=DESCRIPTION,
        infra=infra,
        routers=[ingest_router, usage_router, kpis_router, health_router, risk_router],
        consumers=consumer_specs,
        loops=[*LOOPS, RISK_LOOP],
        produces=[USAGE_TOPIC, FEEDBACK_TOPIC, METRICS_TOPIC],
        openapi_tags=TAGS,
    )
    return create_service_app(definition, s)
