"""``python -m services.console [serve|migrate]``: serve the console (``migrate`` has nothing to do)."""

from __future__ import annotations

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from services.console.app import create_app
from services.console.settings import Settings
from shared.observability import configure_logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.console", description="The post-sales console.")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"],
                        help="serve (default); migrate is a no-op: the console keeps no data of its own")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        print("console: nothing to migrate (it keeps no data of its own)")
        return
    try:
        settings = Settings()
    except ValidationError as exc:
        # Name each bad setting and why, never its value (it may be a secret).
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"console: invalid configuration: {reasons}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("console", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False, lifespan="on", timeout_graceful_shutdown=10, proxy_headers=True)


main()
