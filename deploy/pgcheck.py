"""Exit 0 when the PostgreSQL server in the given URL answers, 1 otherwise (used by `make test`)."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from sqlalchemy.engine import make_url


async def reachable(url: str) -> bool:
    """Whether a PostgreSQL server answers at ``url`` (a SQLAlchemy URL) within 3 s."""
    u = make_url(url)
    try:
        conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username,
                                     password=u.password, database=u.database, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(reachable(sys.argv[1])) else 1)
