"""pytest plugin (loaded with ``-p shared.testing.plugin``): a real broker, fresh databases, apps.

- ``kafka_bootstrap``: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else an embedded Tansu broker on a free port.
- Databases: SQLite by default; PostgreSQL when ``TEST_DATABASE_URL`` is a postgresql URL. Each
  service's migrations run once per test run into a template; each test gets a copy of it.
- ``service``: ``async with service("handoff") as svc`` runs the app (lifespan, relay, consumers)
  against the broker with a per-test topic prefix, and gives ``svc.client`` (admin token).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.events.broker import EmbeddedBroker
from shared.migrations import upgrade
from shared.testing.helpers import (
    TEST_API_KEYS,
    KafkaProbe,
    RunningService,
    run_service,
    service_module,
    unique_prefix,
)


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    return f"postsales: database backend = {backend}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="backend-independent: already run in the SQLite pass")
    for item in items:
        if item.get_closest_marker("db_independent"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker | None]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log").start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(embedded_broker: EmbeddedBroker | None) -> str:
    if embedded_broker is None:
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    return embedded_broker.bootstrap


class DatabaseFactory:
    """Fresh, migrated databases per service, copied from a template migrated once per run."""

    def __init__(self, root: Path, pg_url: str | None) -> None:
        self.root = root
        self.pg_url = pg_url
        self.run_id = uuid.uuid4().hex[:8]
        self.templates: dict[str, str] = {}  # service -> template database (file path or name)
        self.created: list[str] = []
        self.counter = 0

    @property
    def backend(self) -> str:
        return "postgresql" if self.pg_url else "sqlite"

    def new(self, service: str) -> str:
        self.counter += 1
        if self.pg_url is None:
            path = self.root / f"{service}-{self.counter}.db"
            shutil.copyfile(self._sqlite_template(service), path)
            return f"sqlite+aiosqlite:///{path}"
        pg_template = self._pg_template(service)
        name = f"ps_{self.run_id}_{service}_{self.counter}"
        self._pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
        self.created.append(name)
        return self._pg_url_for(name)

    def empty(self, name: str) -> str:
        """A new database with no tables (for tests that build their own schema)."""
        self.counter += 1
        if self.pg_url is None:
            return f"sqlite+aiosqlite:///{self.root / f'{name}-{self.counter}.db'}"
        dbname = f"ps_{self.run_id}_{name}_{self.counter}"
        self._pg_exec(f'CREATE DATABASE "{dbname}"')
        self.created.append(dbname)
        return self._pg_url_for(dbname)

    def _sqlite_template(self, service: str) -> Path:
        path = self.root / f"template-{service}.db"
        if service not in self.templates:
            _, _, migrations = service_module(service)
            _in_thread(upgrade, migrations, f"sqlite+aiosqlite:///{path}")
            self.templates[service] = str(path)
        return path

    def _pg_template(self, service: str) -> str:
        if service not in self.templates:
            name = f"ps_{self.run_id}_{service}_tmpl"
            self._pg_exec(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            _, _, migrations = service_module(service)
            _in_thread(upgrade, migrations, self._pg_url_for(name))
            self.templates[service] = name
        return self.templates[service]

    def _pg_url_for(self, dbname: str) -> str:
        from sqlalchemy.engine import make_url

        assert self.pg_url
        return make_url(self.pg_url).set(database=dbname).render_as_string(hide_password=False)

    def _pg_exec(self, sql: str) -> None:
        import asyncpg
        from sqlalchemy.engine import make_url

        assert self.pg_url
        url = make_url(self.pg_url)

        async def run() -> None:
            conn = await asyncpg.connect(host=url.host or "127.0.0.1", port=url.port or 5432,
                                         user=url.username or "postgres", password=url.password,
                                         database=url.database or "postgres")
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        _in_thread(asyncio.run, run())

    def cleanup(self) -> None:
        if self.pg_url is None:
            return
        for name in reversed(self.created):
            with contextlib.suppress(Exception):
                self._pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking setup (which may call ``asyncio.run``) off the test's running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    url = os.environ.get("TEST_DATABASE_URL") or None
    if url and not url.startswith("postgresql"):
        url = None
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"), url)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def db_backend(database_factory: DatabaseFactory) -> str:
    return database_factory.backend


@pytest.fixture
def topic_prefix() -> str:
    return unique_prefix()


@pytest.fixture
def kafka(kafka_bootstrap: str, topic_prefix: str) -> KafkaProbe:
    return KafkaProbe(kafka_bootstrap, topic_prefix)


ServiceFactory = Callable[..., contextlib.AbstractAsyncContextManager[RunningService]]


@pytest.fixture
def service_settings(
    kafka_bootstrap: str, topic_prefix: str, database_factory: DatabaseFactory, tmp_path: Path
) -> Callable[..., Any]:
    """Build settings for a service: a fresh database unless ``database_url`` is given."""

    def build(name: str, *, settings_cls: type[Any] | None = None, **overrides: Any) -> Any:
        if settings_cls is None:
            _, settings_cls, _ = service_module(name)
            database_url = overrides.pop("database_url", None) or database_factory.new(name)
        else:
            database_url = overrides.pop("database_url", None) or database_factory.empty(name)
        values: dict[str, Any] = {
            "database_url": database_url,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "kafka_topic_prefix": topic_prefix,
            "kafka_topic_partitions": 4,
            "postsales_api_keys": TEST_API_KEYS,
            "postsales_data_dir": tmp_path / "data",
            "outbox_poll_interval": 0.05,
            "consumer_retry_backoff": 0.05,
        }
        values.update(overrides)
        return settings_cls(**values)

    return build


@pytest.fixture
def service(service_settings: Callable[..., Any]) -> ServiceFactory:
    """``async with service("handoff", **settings_overrides) as svc:`` — a running app and client."""

    @contextlib.asynccontextmanager
    async def start(name: str, **overrides: Any) -> AsyncIterator[RunningService]:
        settings = overrides.pop("settings", None) or service_settings(name, **overrides)
        async with run_service(name, settings) as running:
            yield running

    return start
