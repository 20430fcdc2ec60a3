"""docs/quickstart.md, run as written: every ```sh block after `make run`, in order, in one shell
state, against the suite started as processes. Each block must exit 0 and print what the guide says.

The blocks read the suite's addresses from ``$HANDOFF`` … ``$NOTIFIER`` and ``$TOKEN`` (defaulting to
`make run`'s), run ``.venv/bin/postsales`` (a link to this interpreter's environment) and
``data/dev-token``, all inside a scratch directory; the CLI gets the suite through its environment
variables, as an operator of a non-default deployment would give them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.events.broker import free_port
from shared.testing.helpers import ADMIN_TOKEN
from shared.testing.suite import Suite

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "quickstart.md"
BLOCK_TIMEOUT = 240

pytestmark = pytest.mark.timeout(1500)


def shell_blocks(text: str) -> list[str]:
    return [m[1] for m in re.finditer(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)]


# What each block must print, keyed by a command only that block runs.
EXPECTED: dict[str, list[str]] = {
    'curl -fsS "$HANDOFF/healthz"': ['"status"'],
    'POST "$HANDOFF/v1/handoffs"': ['"status":"draft"', '"missing":[]'],
    "/submit": ['"status":"submitted"', "# Handoff", '"status":"accepted"'],
    "account.json": ['"id":"acme-corp"', '"stage":"onboarding"', "SSO with Okta"],
    "/v1/channels": ['"kind":"webhook"', '"secret":"whsec_'],
    "/v1/rules": ['"name":"detractor-to-webhook"', '"name": "detractor-to-webhook"'],
    "usage.json <<EOF": ['{"accepted":3,"rejected":[]}{"accepted":3,"rejected":[]}'],
    "usage-today.json": ['"events":5', '"active_users":2'],
    "/v1/surveys": ['"components"'],
    "alerts tail": ["firing", "acme-corp", "signature valid", "/postsales", "detractor-to-webhook"],
    "/ack": ['"status":"acknowledged"', '"status":"resolved"'],
    "postsales lag": ["GROUP", "total lag", "SERVICE", "handoff", "0 message(s) on"],
}


def test_the_quickstart_runs_as_written(database_factory, tmp_path: Path) -> None:
    blocks = shell_blocks(GUIDE.read_text())
    assert blocks[0].strip() == "make run", "the guide starts with `make run`"
    blocks = blocks[1:]
    for marker in EXPECTED:
        assert sum(marker in b for b in blocks) == 1, f"exactly one block runs {marker!r}"

    suite = Suite(root=tmp_path / "suite", database_urls={n: database_factory.new(n) for n in
                                                          ("handoff", "lifecycle", "metrics", "notifier")},
                  extra_env={"METRICS_HEALTH_INTERVAL": "0.3", "NOTIFIER_EVALUATION_INTERVAL": "0.2",
                             "NOTIFIER_DELIVERY_POLL_INTERVAL": "0.2", "LOG_LEVEL": "INFO"})
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "dev-token").write_text(ADMIN_TOKEN + "\n")
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    state = work / ".state"
    state.write_text("")
    try:
        suite.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "POSTSALES_", "DATABASE_URL"))}
        env |= {
            # Where the services are, as the guide's first block reads them (not make run's ports here).
            "HANDOFF": suite.url("handoff"), "LIFECYCLE": suite.url("lifecycle"),
            "METRICS": suite.url("metrics"), "NOTIFIER": suite.url("notifier"),
            "WEBHOOK_PORT": str(free_port()),
            # The CLI: flag > environment > data/suite.json; this suite is not `make run`'s.
            "POSTSALES_NOTIFIER_URL": suite.url("notifier"), "POSTSALES_METRICS_URL": suite.url("metrics"),
            "POSTSALES_TOKEN": ADMIN_TOKEN, "KAFKA_BOOTSTRAP_SERVERS": suite.bootstrap,
            "KAFKA_TOPIC_PREFIX": suite.prefix, "POSTSALES_DATA_DIR": str(work / "data"),
            "PYTHONPATH": str(ROOT),  # the checkout under test, whatever the editable install points at
        }
        env |= {f"{n.upper()}_DATABASE_URL": url for n, url in suite.database_urls.items()}
        for index, block in enumerate(blocks):
            # One shell state across blocks, as in a terminal: variables and functions carry over.
            script = (f"set -a; source {state}; set +a; set -eo pipefail\n{block}\n"
                      f"{{ export -p; declare -f; }} > {state}\n")
            proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=BLOCK_TIMEOUT, start_new_session=True, check=False)
            shown = f"block {index + 1}:\n{block}\n--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n" \
                    f"{proc.stderr[-4000:]}"
            assert proc.returncode == 0, shown
            for marker, wanted in EXPECTED.items():
                if marker in block:
                    for text in wanted:
                        assert text in proc.stdout + proc.stderr, f"{text!r} missing from the output of {shown}"
            assert ADMIN_TOKEN not in proc.stdout + proc.stderr, shown
        # What the guide claims happened, checked over the API too.
        events = json.loads((work / "usage-today.json").read_text())["items"][0]
        assert events["events"] == 5  # the batch was sent twice and counted once
    finally:
        _stop_background(work)
        suite.stop()
        for name, svc in suite.services.items():
            if svc.log_path.exists():
                print(f"--- {name} log tail ---\n{svc.logs()[-2000:]}")


def _stop_background(work: Path) -> None:
    """The guide starts the webhook receiver in the background; stop it if it is still waiting."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "webhooks listen" in args:
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd == str(work):
                os.kill(int(pid), signal.SIGTERM)
