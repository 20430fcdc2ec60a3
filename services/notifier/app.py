"""The notifier service's FastAPI app."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import Counter

from services.notifier.alerts.endpoints import router as alerts_router
from services.notifier.alerts.service import Engine
from services.notifier.channels.endpoints import router as channels_router
from services.notifier.consumers import consumer_specs
from services.notifier.context import Notifier
from services.notifier.crypto import SecretBox, load_keys
from services.notifier.deliveries.endpoints import router as deliveries_router
from services.notifier.models import infra
from services.notifier.outbound import Resolver
from services.notifier.rules.endpoints import router as rules_router
from services.notifier.scheduler import LOOPS
from services.notifier.settings import Settings
from services.notifier.silences.endpoints import router as silences_router
from shared.app import ServiceContext, ServiceDefinition, create_service_app
from shared.events.registry import ALERTS_TOPIC
from shared.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"

TAGS = [
    {"name": "channels", "description": "Where notifications go: signed webhooks, Slack, email."},
    {"name": "rules", "description": "Which events raise alerts, how they group, repeat, escalate, resolve."},
    {"name": "alerts", "description": "Alerts by fingerprint: firing -> acknowledged -> resolved."},
    {"name": "silences", "description": "Mute notifications of alerts matching label matchers for a time."},
    {"name": "deliveries", "description": "Each notification per channel, and every attempt to send it."},
]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the notifier app; settings default to the environment."""
    s = Settings.resolve(settings)

    async def on_startup(ctx: ServiceContext[Settings]) -> Notifier:
        key = s.secret_key.get_secret_value() if s.secret_key else None
        registry = ctx.metrics.registry
        return Notifier(
            box=SecretBox(load_keys(key, s.postsales_data_dir)),
            engine=Engine(settings=s, outbox=ctx.outbox, wake_deliveries=asyncio.Event()), resolver=Resolver(),
            reencrypted=Counter("notifier_secrets_reencrypted",
                                "Channel secrets re-encrypted under the current key", registry=registry))

    definition = ServiceDefinition(
        name="notifier",
        title="Notifier service",
        description=(
            "Alert rules over every post-sales domain event, alerts deduplicated by fingerprint "
            "(firing -> acknowledged -> resolved), grouping, silences, inhibition, and durable signed "
            "deliveries with retry to webhooks, Slack and email."),
        infra=infra,
        routers=[channels_router, rules_router, alerts_router, silences_router, deliveries_router],
        consumers=consumer_specs,
        loops=LOOPS,
        produces=[ALERTS_TOPIC],
        openapi_tags=TAGS,
        on_startup=on_startup,
    )
    return create_service_app(definition, s)
