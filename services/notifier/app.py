"""The notifier service's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.notifier.models import infra
from services.notifier.settings import Settings
from shared.app import ServiceDefinition, create_service_app
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the notifier app; settings default to the environment."""
    definition = ServiceDefinition(
        name="notifier",
        title="Notifier service",
        description="Notifier service of the post-sales suite.",
        infra=infra,
        routers=[],
    )
    return create_service_app(definition, settings or Settings())
