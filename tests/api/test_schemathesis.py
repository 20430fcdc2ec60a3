"""Schemathesis against each service's own OpenAPI document, on a live process (uvicorn, real
database of the backend under test, real broker), authenticated with the admin token.

The run is bounded and reproducible: a fixed seed, deterministic generation, few examples per
operation in the fuzzing phase. The coverage phase still sends every boundary and wrong-type value
the schema defines, which is where lax coercions and undocumented status codes show up. Reproduce a
failure by hand with the ``schemathesis run`` command printed in the assertion message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.events.broker import free_port
from shared.testing.helpers import ADMIN_TOKEN, TEST_API_KEYS, unique_prefix
from shared.testing.suite import ServiceProcess

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,negative_data_rejection,ignored_auth"
SEED = 20261123
MAX_EXAMPLES = 5
RUN_TIMEOUT = 420
# Requests with undeclared methods only feed the `unsupported_method` check, which is not run here.
CONFIG = "[phases.coverage]\nunexpected-methods = []\n"


@pytest.fixture
def live(request: pytest.FixtureRequest, database_factory, kafka_bootstrap: str,
         tmp_path: Path) -> Iterator[ServiceProcess]:
    """One service as a process (``python -m services.<name>``), as `make run` starts it."""
    name: str = request.param
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_URL", "POSTSALES_"))}
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": unique_prefix(),
        "POSTSALES_API_KEYS": json.dumps(TEST_API_KEYS),
        "POSTSALES_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_factory.new(name),
        f"{name.upper()}_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    proc = ServiceProcess(name, port, env, tmp_path / f"{name}.log")
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def schemathesis_command(url: str, config: Path) -> list[str]:
    return [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{url}/openapi.json",
        "--checks", CHECKS,
        "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-deterministic",
        # One worker: hypothesis parses lambdas with `ast` and CPython 3.11 can crash doing that in threads
        # ("AST constructor recursion depth mismatch").
        "--workers", "1",
        "--request-timeout", "30",
    ]


@pytest.mark.timeout(RUN_TIMEOUT + 120)
@pytest.mark.parametrize("live", [
    "handoff",
    "lifecycle",
    "metrics",
    "notifier",
], indirect=True)
def test_openapi_contract_holds_under_fuzzing(live: ServiceProcess, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    cmd = schemathesis_command(live.url, config)
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                            env=os.environ | {"NO_COLOR": "1"}, check=False)
    elapsed = time.monotonic() - started
    report = result.stdout + result.stderr
    shown = " ".join(cmd).replace(ADMIN_TOKEN, "$TOKEN")
    assert result.returncode == 0, (
        f"schemathesis found problems in {live.name} ({elapsed:.0f}s, exit {result.returncode}):\n{shown}\n\n"
        f"{report[-20_000:]}\n--- {live.name} log (tail) ---\n{live.logs()[-5_000:]}")
    # A run that tested nothing would pass too: every selected operation must have been exercised.
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested, report[-5_000:]
    assert int(selected[1]) == int(selected[2]) == int(tested[1]) >= 5, report[-5_000:]
