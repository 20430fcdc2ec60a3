from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.testing.suite import SERVICES, Suite, WebhookReceiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def suite(database_factory, tmp_path_factory) -> Iterator[Suite]:
    """The four services as processes on their own broker and databases (one suite per test module)."""
    s = Suite(root=tmp_path_factory.mktemp("suite"),
              database_urls={name: database_factory.new(name) for name in SERVICES})
    try:
        yield s.start()
    finally:
        s.stop()
