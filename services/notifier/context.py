"""What the running notifier holds besides the common context: the secret box and the alert engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from services.notifier.alerts.service import Engine
from services.notifier.crypto import SecretBox
from services.notifier.settings import Settings
from shared.app import ServiceContext


@dataclass
class Notifier:
    box: SecretBox
    engine: Engine


NotifierContext = ServiceContext[Settings, Notifier]


def engine_of(ctx: ServiceContext[Any, Any]) -> Engine:
    return cast(NotifierContext, ctx).extension.engine
