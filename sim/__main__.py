"""``python -m sim``: load a simulated book into a running local suite and train the churn-risk model.

    python -m sim --accounts 200 --months 18 [--seed 7] [--token T] [--handoff-url …]

The token comes from ``--token``, ``POSTSALES_TOKEN`` or ``data/dev-token`` (what ``make run`` writes);
it needs write scopes on every service and ``admin`` to train the model.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from pathlib import Path

import httpx

from sim.book import simulate
from sim.load import Urls, load, wait_consumed


def _token(arg: str | None) -> str:
    if arg:
        return arg
    if os.environ.get("POSTSALES_TOKEN"):
        return os.environ["POSTSALES_TOKEN"]
    path = Path(os.environ.get("POSTSALES_DATA_DIR", "data")) / "dev-token"
    if path.exists():
        return path.read_text().strip()
    sys.exit("no token: pass --token, set POSTSALES_TOKEN, or start the suite with `make run` (writes data/dev-token)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim", description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=200)
    p.add_argument("--months", type=int, default=18)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--token")
    p.add_argument("--handoff-url", default="http://127.0.0.1:8001")
    p.add_argument("--lifecycle-url", default="http://127.0.0.1:8002")
    p.add_argument("--metrics-url", default="http://127.0.0.1:8003")
    p.add_argument("--notifier-url", default="http://127.0.0.1:8004")
    p.add_argument("--console-url", default="http://127.0.0.1:8005")
    p.add_argument("--no-train", action="store_true", help="load only; do not train the risk model")
    args = p.parse_args(argv)
    token = _token(args.token)
    urls = Urls(args.handoff_url, args.lifecycle_url, args.metrics_url, args.notifier_url)

    def say(msg: str) -> None:
        print(f"[sim] {msg}", flush=True)

    try:
        r = httpx.get(f"{urls.metrics}/readyz", timeout=5)
        r.raise_for_status()
    except httpx.HTTPError:
        sys.exit(f"the suite is not running at {urls.metrics} (start it with `make run` in another terminal)")
    started = time.monotonic()
    book = simulate(accounts=args.accounts, months=args.months, seed=args.seed, today=dt.datetime.now(dt.UTC).date())
    say("book: " + ", ".join(f"{k} {v}" for k, v in book.summary().items()))
    report = asyncio.run(load(book, urls, token=token, progress=say))
    say(f"loaded {report.accounts_loaded} accounts ({report.accounts_skipped} already there), "
        f"{report.events_posted} events, {report.requests} requests in {time.monotonic() - started:.0f}s")
    for err in report.errors[:10]:
        say(f"  problem: {err}")
    if not asyncio.run(wait_consumed(book, urls, token, progress=None)):
        say("metrics has not caught up with the import yet; training anyway")
    if not args.no_train:
        r = httpx.post(f"{urls.metrics}/v1/risk-model/train", json={}, timeout=600,
                       headers={"Authorization": f"Bearer {token}"})
        if r.status_code == 201:
            m = r.json()
            bt = m["backtest"]
            say(f"risk model v{m['version']}: backtest AUC {bt['auc']} (health score alone {bt['baseline']['auc']}), "
                f"Brier {bt['brier']}, precision in the top decile {bt['precision_at_top_decile']} "
                f"on {bt['n_test']} test snapshots")
        else:
            say(f"training the risk model: {r.status_code} {r.text[:300]}")
    say(f"done in {time.monotonic() - started:.0f}s. Look at:")
    say(f"  console         {args.console_url}")
    say(f"  at-risk list    {urls.metrics}/v1/risk")
    say(f"  risk model      {urls.metrics}/v1/risk-model")
    say(f"  accounts        {urls.lifecycle}/v1/accounts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
