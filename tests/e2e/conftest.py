from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.testing.suite import SERVICES, Suite, WebhookReceiver

# Faster loops than production so a test waits seconds, not minutes, for retries and notifications.
FAST_ENV = {
    "CONSUMER_RETRY_BACKOFF": "0.05",
    "METRICS_HEALTH_INTERVAL": "0.3",
    # Usage transactions of 1k events (production: 10k), so that a test's 10k events span several and a
    # SIGKILL can land between them.
    "METRICS_USAGE_BATCH_EVENTS": "1000",
    "NOTIFIER_EVALUATION_INTERVAL": "0.2",
    "NOTIFIER_DELIVERY_POLL_INTERVAL": "0.2",
    "NOTIFIER_DELIVERY_BASE_DELAY": "0.5",
    "NOTIFIER_DELIVERY_MAX_DELAY": "2",
    "NOTIFIER_DELIVERY_TIMEOUT": "5",
    "NOTIFIER_DELIVERY_LEASE": "15",
    "NOTIFIER_DELIVERY_MAX_ATTEMPTS": "100",  # with 2 s backoffs: minutes before a delivery is dead
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def suite(database_factory, tmp_path_factory) -> Iterator[Suite]:
    """The four services as processes on their own broker and databases (one suite per test module)."""
    s = Suite(root=tmp_path_factory.mktemp("suite"),
              database_urls={name: database_factory.new(name) for name in SERVICES},
              extra_env=dict(FAST_ENV))
    try:
        yield s.start()
    finally:
        s.stop()
