"""For every service, the Alembic migrations build exactly the schema its SQLAlchemy models declare:
tables, columns, types, nullability, server defaults, indexes, unique, foreign-key and check constraints."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, MetaData, inspect
from sqlalchemy.engine import Connection

from shared.db import create_engine

SERVICES = ["handoff", "lifecycle", "metrics", "notifier"]


def metadata_of(service: str) -> MetaData:
    metadata: MetaData = importlib.import_module(f"services.{service}.models").Base.metadata
    return metadata


def declared_checks(metadata: MetaData) -> set[tuple[str, str]]:
    return {(table.name, str(c.name)) for table in metadata.tables.values() for c in table.constraints
            if isinstance(c, CheckConstraint)}


def drift(conn: Connection, metadata: MetaData) -> dict[str, Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    inspector = inspect(conn)
    built_checks = {(table, str(c["name"])) for table in inspector.get_table_names() if table != "alembic_version"
                    for c in inspector.get_check_constraints(table)}
    return {"autogenerate": compare_metadata(ctx, metadata),
            "checks missing from the database": sorted(declared_checks(metadata) - built_checks),
            "checks not in the models": sorted(built_checks - declared_checks(metadata))}


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_build_what_the_models_declare(service: str, database_factory: Any) -> None:
    engine = create_engine(database_factory.new(service))
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(drift, metadata_of(service))
    finally:
        await engine.dispose()
    assert found == {"autogenerate": [], "checks missing from the database": [], "checks not in the models": []}


async def test_the_comparison_sees_a_drift(database_factory: Any) -> None:
    """The check above is not vacuous: a model that differs from the migrations in nullability, type,
    an index or a check constraint is reported."""
    from sqlalchemy import Index, String

    metadata = MetaData(naming_convention=metadata_of("handoff").naming_convention)
    for table in metadata_of("handoff").tables.values():
        table.to_metadata(metadata)
    handoffs = metadata.tables["handoffs"]
    handoffs.c.account_currency.nullable = not handoffs.c.account_currency.nullable
    handoffs.c.account_arr.type = String(41)
    Index("ix_handoffs_drift", handoffs.c.account_arr)
    handoffs.append_constraint(CheckConstraint("account_seats >= 0", name="seats"))
    engine = create_engine(database_factory.new("handoff"))
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(drift, metadata)
    finally:
        await engine.dispose()
    kinds = {d[0][0] if isinstance(d, list) else d[0] for d in found["autogenerate"]}
    assert {"modify_nullable", "modify_type", "add_index"} <= kinds, found
    assert found["checks missing from the database"] == [("handoffs", "ck_handoffs_seats")]
