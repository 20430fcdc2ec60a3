"""The skeleton every service is built on.

- :mod:`~shared.app.context`: what a service is (``ServiceDefinition``, ``ConsumerSpec``) and what a
  running one holds (``ServiceContext``);
- :mod:`~shared.app.factory`: ``create_service_app`` (middleware, error handlers, routers, docs);
- :mod:`~shared.app.runtime`: the lifespan (engine, outbox relay, consumers, loops, orderly stop);
- :mod:`~shared.app.periodic`: ``Periodic``, work done every N seconds, supervised and counted;
- :mod:`~shared.app.retention`: the purge of old dedup and idempotency keys every service runs;
- :mod:`~shared.app.ops`: ``/healthz``, ``/readyz``, ``/metrics``, offline ``/docs``;
- :mod:`~shared.app.dependencies`: ``SessionDep``, ``ContextDep``, ``SettingsDep``.
"""

from shared.app.context import BackgroundLoop, ConsumerSpec, ConsumerSpecs, ServiceContext, ServiceDefinition
from shared.app.dependencies import ContextDep, SessionDep, SettingsDep, get_ctx, get_session, get_settings
from shared.app.factory import create_service_app
from shared.app.periodic import Periodic

__all__ = [
    "BackgroundLoop",
    "ConsumerSpec",
    "ConsumerSpecs",
    "ContextDep",
    "Periodic",
    "ServiceContext",
    "ServiceDefinition",
    "SessionDep",
    "SettingsDep",
    "create_service_app",
    "get_ctx",
    "get_session",
    "get_settings",
]
