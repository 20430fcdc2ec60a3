"""``python -m services.<name> [serve|migrate]``: run a service with uvicorn, or migrate its database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from shared.migrations import upgrade
from shared.observability import configure_logging
from shared.settings import ServiceSettings


def main(*, settings_cls: type[ServiceSettings], create_app: Callable[[ServiceSettings], FastAPI],
         migrations_dir: Path, argv: list[str] | None = None) -> None:
    name = settings_cls.service_name
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}", description=f"The {name} service.")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"],
                        help="serve (default) runs the HTTP API and consumers; migrate applies migrations")
    args = parser.parse_args(argv)
    try:
        settings = settings_cls()
    except Exception as exc:
        print(f"{name}: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_level)
    if args.command == "migrate":
        upgrade(migrations_dir, settings.effective_database_url)
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False, lifespan="on", timeout_graceful_shutdown=10)
