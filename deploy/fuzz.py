"""``make fuzz``: schemathesis against every service's OpenAPI on live processes, with a time budget.

Unlike the bounded, fixed-seed run in ``make test`` (``tests/api/test_schemathesis.py``), this runs
every phase (examples, coverage, fuzzing, stateful) with a fresh random seed, printed so a finding
can be reproduced with ``FUZZ_SEED=<seed> make fuzz``. Each service runs as ``make run`` starts it
(``python -m services.<name>``, its own fresh SQLite database, the embedded broker), one at a time.

Settings (environment): ``FUZZ_SECONDS`` per service (default 180), ``FUZZ_SERVICES`` (comma
separated; default every service), ``FUZZ_SEED``, ``FUZZ_MAX_EXAMPLES`` (per operation and phase),
``FUZZ_WORKERS`` (default 1), ``FUZZ_CHECKS`` (schemathesis checks; default ``CHECKS`` below),
``FUZZ_REPORT_DIR`` (default ``data/fuzz``: the JUnit and NDJSON reports and each service's log),
``FUZZ_DATABASE_URL`` (a PostgreSQL server, e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``: each service then gets a fresh database
there, dropped afterwards; default SQLite). Exit code 0 only when no service had a finding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from deploy.run import SERVICES
from shared.events.broker import EmbeddedBroker, free_port
from shared.testing.helpers import ADMIN_TOKEN, TEST_API_KEYS, unique_prefix
from shared.testing.suite import ServiceProcess

# No 5xx, responses match their schema, status codes and content types, invalid input is refused, auth
# is enforced. Not `use_after_free` / `ensure_resource_availability`: they assume plain REST resources,
# and two documented behaviours trip them: DELETE /v1/silences/{id} expires a silence (it stays
# readable, as in Alertmanager), and a POST repeated with its Idempotency-Key returns the first response
# even if that resource was deleted since. FUZZ_CHECKS=all (or a list) runs them too.
CHECKS = ("not_a_server_error,response_schema_conformance,status_code_conformance,negative_data_rejection,"
          "ignored_auth,content_type_conformance")
PHASES = "examples,coverage,fuzzing,stateful"
# Undeclared methods only feed `unsupported_method`, which is not among the checks.
CONFIG = "[phases.coverage]\nunexpected-methods = []\n"


@dataclass
class Outcome:
    service: str
    seed: int
    exit_code: int
    seconds: float
    summary: str
    failures: list[str]


def say(message: str) -> None:
    print(f"[fuzz] {message}", flush=True)


async def _pg(server: str, statement: str) -> None:
    u = make_url(server)
    conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username,
                                 password=u.password, database=u.database or "postgres", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def database(server: str | None, name: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database for one service on ``server`` (dropped after), or None for SQLite."""
    if not server:
        yield None
        return
    db = f"fuzz_{name}_{os.getpid()}_{random.SystemRandom().randrange(10**6)}"
    asyncio.run(_pg(server, f'CREATE DATABASE "{db}"'))
    try:
        yield make_url(server).set(database=db).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(_pg(server, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def has_openapi(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/openapi.json", timeout=5) as r:  # noqa: S310 - local http URL
            return bool(r.status == 200)
    except OSError:
        return False


def failures_of(report: str) -> list[str]:
    """The lines of schemathesis' report that name a failing operation and what failed."""
    found: list[str] = []
    operation = ""
    for line in report.splitlines():
        head = re.match(r"_{3,} (.+?) _{3,}$", line.strip())  # "___ GET /v1/kpis ___", "___ Stateful tests ___"
        if head:
            operation = head[1]
            continue
        if "SUMMARY" in line:
            operation = ""
        curl = re.match(r"^\s+(curl .+)$", line)
        if operation and curl:
            found.append(f"{operation}: reproduce: {curl[1]}")
            continue
        failure = re.match(r"^- (.+)$", line)  # "- ST101 Server error", unindented, under an operation
        if operation and failure:
            entry = f"{operation}: {failure[1].strip()}"
            if entry not in found:
                found.append(entry)
    return found


def fuzz_service(name: str, port: int, bootstrap: str, work: Path, report_dir: Path, seed: int,
                 seconds: int, max_examples: str | None, workers: str, database_url: str | None) -> Outcome | None:
    data = work / name
    data.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_URL", "POSTSALES_"))}
    env |= {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PREFIX": unique_prefix(),
            "POSTSALES_API_KEYS": json.dumps(TEST_API_KEYS), "POSTSALES_DATA_DIR": str(data),
            f"{name.upper()}_PORT": str(port), "LOG_LEVEL": "WARNING"}
    if database_url:
        env["DATABASE_URL"] = database_url
    migrated = subprocess.run([sys.executable, "-m", f"services.{name}", "migrate"], env=env,  # noqa: S603
                              capture_output=True, text=True, check=False)
    if migrated.returncode != 0:  # a service without a database (the console) has nothing to migrate
        say(f"{name}: `migrate` exited {migrated.returncode}; starting it anyway")
    log = report_dir / f"{name}.log"
    log.unlink(missing_ok=True)
    proc = ServiceProcess(name, port, env, log)
    proc.start()
    try:
        proc.wait_ready(180)
        if not has_openapi(proc.url):
            say(f"{name}: no /openapi.json, skipped")
            return None
        config = work / "schemathesis.toml"
        config.write_text(CONFIG)
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
               "run", f"{proc.url}/openapi.json", "--checks", os.environ.get("FUZZ_CHECKS") or CHECKS,
               "--phases", PHASES,
               "--header", f"Authorization: Bearer {ADMIN_TOKEN}", "--seed", str(seed),
               "--max-time", str(seconds), "--workers", workers, "--request-timeout", "30",
               "--report", "junit,ndjson", "--report-dir", str(report_dir / name)]
        if max_examples:
            cmd += ["--max-examples", max_examples]
        say(f"{name}: {seconds}s budget on {proc.url} (seed {seed})")
        started = time.monotonic()
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False,  # noqa: S603
                                env=os.environ | {"NO_COLOR": "1"}, timeout=seconds * 3 + 600)
        elapsed = time.monotonic() - started
    finally:
        proc.stop()
    report = result.stdout + result.stderr
    (report_dir / f"{name}.txt").write_text(report)
    lines = report.splitlines()
    summary = next((lines[i + 1].strip() for i, line in enumerate(lines[:-1]) if line.strip() == "Test cases:"), "")
    return Outcome(name, seed, result.returncode, elapsed, summary, failures_of(report))


def main() -> int:
    seconds = int(os.environ.get("FUZZ_SECONDS") or 180)
    names = [s.strip() for s in (os.environ.get("FUZZ_SERVICES") or ",".join(SERVICES)).split(",") if s.strip()]
    unknown = set(names) - set(SERVICES)
    if unknown:
        say(f"unknown service(s) {sorted(unknown)}; one of: {', '.join(SERVICES)}")
        return 2
    seed = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**31))
    report_dir = Path(os.environ.get("FUZZ_REPORT_DIR") or "data/fuzz").resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    backend = "PostgreSQL" if os.environ.get("FUZZ_DATABASE_URL") else "SQLite"
    say(f"seed {seed} (reproduce: FUZZ_SEED={seed} make fuzz); {seconds}s per service on {backend}; "
        f"reports in {report_dir}")
    outcomes: list[Outcome] = []
    work = Path(tempfile.mkdtemp(prefix="postsales-fuzz-"))
    broker = EmbeddedBroker(log_path=work / "broker.log").start()
    try:
        for name in names:
            with database(os.environ.get("FUZZ_DATABASE_URL"), name) as url:
                outcome = fuzz_service(name, free_port(), broker.bootstrap, work, report_dir, seed, seconds,
                                       os.environ.get("FUZZ_MAX_EXAMPLES"), os.environ.get("FUZZ_WORKERS") or "1",
                                       url)
            if outcome is not None:
                outcomes.append(outcome)
                state = "ok" if outcome.exit_code == 0 else f"FAILED (exit {outcome.exit_code})"
                say(f"{name}: {state} in {outcome.seconds:.0f}s  {outcome.summary}")
                for failure in outcome.failures:
                    say(f"  {name}  {failure}")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    bad = [o for o in outcomes if o.exit_code != 0]
    say(f"seed {seed}: {len(outcomes) - len(bad)} of {len(outcomes)} service(s) clean"
        + (f"; findings in {', '.join(o.service for o in bad)} (full reports: {report_dir}/<service>.txt)"
           if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
