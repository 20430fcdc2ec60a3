"""Database plumbing: engines, sessions, the naming convention, the suite's infrastructure tables.

Every service owns its own database. Each declares its models on its own ``DeclarativeBase``
(``metadata = service_metadata()``, ``type_annotation_map = TYPE_ANNOTATION_MAP``) and adds the
infrastructure tables every service needs (outbox, processed events, idempotency keys) with
``infra = infra_tables(Base.metadata)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.db_driver import OneTripDBAPI

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


READ_ONLY = "postsales_read_only"
"""Execution option for a transaction that only reads: on SQLite it then takes no write lock.
Use ``await session.connection(execution_options={READ_ONLY: True})`` before the first statement."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp on every backend (SQLite drops the offset; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a timezone-aware column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class InfraTables:
    outbox: Table
    processed_events: Table
    idempotency_keys: Table


def infra_tables(metadata: MetaData) -> InfraTables:
    """Declare the outbox, processed-event and idempotency-key tables on ``metadata``."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigIntPK, primary_key=True, autoincrement=True),
        Column("event_id", String(200), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONType, nullable=True),
        Column("created_at", UTCDateTime, nullable=False, default=utcnow),
        Column("published_at", UTCDateTime, nullable=True, index=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("source", String(500), primary_key=True),
        Column("event_id", String(200), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False, default=utcnow, index=True),
    )
    idempotency = Table(
        "idempotency_keys",
        metadata,
        Column("key", String(255), primary_key=True),
        Column("scope", String(500), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("response_body", LargeBinary, nullable=False),
        Column("created_at", UTCDateTime, nullable=False, default=utcnow, index=True),
    )
    return InfraTables(outbox=outbox, processed_events=processed, idempotency_keys=idempotency)


TYPE_ANNOTATION_MAP: dict[Any, Any] = {dt.datetime: UTCDateTime, dict[str, Any]: JSONType, list[Any]: JSONType}
"""Every service's ``Base.type_annotation_map``: timezone-aware datetimes, JSON(B) dicts and lists."""


def service_metadata() -> MetaData:
    """A service's own metadata, with the suite's constraint naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


Bind = str | AsyncEngine | AsyncSession | AsyncConnection
"""What the dialect helpers accept: a database URL, an engine, a session or a connection."""


def dialect_name(bind: Bind) -> str:
    """``"postgresql"`` or ``"sqlite"``: the one way to ask which database code runs on."""
    if isinstance(bind, str):
        return make_url(bind).get_backend_name()
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect.name
    return bind.dialect.name


def is_sqlite(bind: Bind) -> bool:
    return dialect_name(bind) == "sqlite"


def is_postgresql(bind: Bind) -> bool:
    return dialect_name(bind) == "postgresql"


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` of the session's dialect, with ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    return postgresql.insert(table) if is_postgresql(session) else sqlite.insert(table)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if is_sqlite(url):
        kwargs.setdefault("module", OneTripDBAPI())
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling defers BEGIN; take it over so that a
            # transaction starts with BEGIN IMMEDIATE and writers queue instead of failing.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Readers that never write (READ_ONLY) take no lock at all under WAL.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
