"""The lifecycle service's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.lifecycle.models import infra
from services.lifecycle.settings import Settings
from shared.app import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the lifecycle app; settings default to the environment."""
    definition = ServiceDefinition(
        name="lifecycle",
        title="Lifecycle service",
        description="Lifecycle service of the post-sales suite.",
        infra=infra,
        routers=[],
    )
    return create_service_app(definition, settings or Settings())
