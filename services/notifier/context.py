"""What the running notifier holds besides the common context: the secret box, the alert engine,
the outbound resolver and its own counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import Counter

from services.notifier.alerts.service import Engine
from services.notifier.crypto import SecretBox
from services.notifier.outbound import Resolver
from services.notifier.settings import Settings
from shared.app import ServiceContext


@dataclass
class Notifier:
    box: SecretBox
    engine: Engine
    resolver: Resolver
    reencrypted: Counter


NotifierContext = ServiceContext[Settings, Notifier]


def engine_of(ctx: ServiceContext[Any, Any]) -> Engine:
    return cast(NotifierContext, ctx).extension.engine
