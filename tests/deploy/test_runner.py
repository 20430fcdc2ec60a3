"""`make run`'s runner as a real process tree: four healthy services, clean Ctrl-C, a dead child reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shared.events.broker import free_port

SERVICES = ("handoff", "lifecycle", "metrics", "notifier", "console")
pytestmark = pytest.mark.db_independent  # the runner uses its own SQLite files


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@pytest.fixture
def runner(tmp_path: Path):
    ports = {name: free_port() for name in SERVICES}
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "POSTSALES_API_KEYS",
                                                             "DATABASE_URL")}
    env |= {f"{n.upper()}_PORT": str(p) for n, p in ports.items()}
    env |= {"POSTSALES_DATA_DIR": str(tmp_path / "data"), "POSTSALES_BROKER_PORT": str(free_port())}
    with open(tmp_path / "run.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "deploy.run"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=Path(__file__).parents[2])
    try:
        yield proc, ports, tmp_path / "run.log"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def wait_healthy(ports: dict[str, int], proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "runner exited early"
        if all(get(f"http://127.0.0.1:{p}/healthz") == 200 for p in ports.values()):
            return
        time.sleep(0.3)
    raise AssertionError("services not healthy")


def test_run_brings_up_all_four_and_ctrl_c_leaves_no_orphans(runner) -> None:
    proc, ports, log = runner
    wait_healthy(ports, proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
            get(f"http://127.0.0.1:{p}/readyz") == 200 for p in ports.values()):
        time.sleep(0.3)
    assert all(get(f"http://127.0.0.1:{p}/readyz") == 200 for p in ports.values())
    while "all four services are up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    assert "development token (admin): dev-" in text
    token = text.split("development token (admin): ")[1].split()[0]
    assert (Path(log).parent / "data" / "dev-token").read_text().strip() == token
    assert oct((Path(log).parent / "data" / "dev-token").stat().st_mode & 0o777) == "0o600"
    assert "postsales lag" in text and "postsales alerts tail" in text  # the banner shows the CLI to try
    # ...and says that the built-in rules notify no one until a channel exists.
    assert "alert rules notify no one yet" in text and "health-turned-red" in text

    data = Path(log).parent / "data"
    suite = json.loads((data / "suite.json").read_text())
    assert suite["status"] == "running" and suite["pid"] == proc.pid
    assert {n: suite["services"][n] for n in SERVICES} == {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    assert suite["token_file"] == str(data / "dev-token") and suite["embedded_broker"] is True
    assert oct((data / "suite.json").stat().st_mode & 0o777) == "0o600"
    # The CLI, run with no flags from anywhere that shares the data directory, finds this suite.
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "POSTSALES_", "DATABASE_URL"))}
    cli_env["POSTSALES_DATA_DIR"] = str(data)
    lag = subprocess.run([sys.executable, "-m", "deploy.cli", "lag", "--json"], env=cli_env, capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert lag.returncode == 0, lag.stderr
    assert all(json.loads(line)["lag"] >= 0 for line in lag.stdout.splitlines())
    outbox = subprocess.run([sys.executable, "-m", "deploy.cli", "outbox", "--json"], env=cli_env,
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert outbox.returncode == 0, outbox.stdout + outbox.stderr
    assert {json.loads(line)["service"] for line in outbox.stdout.splitlines()} >= set(SERVICES) - {"console"}
    # ... and its metrics URL and development token (an HTTP command with neither flag nor variable).
    recompute = subprocess.run([sys.executable, "-m", "deploy.cli", "recompute", "--from", "2026-11-01", "--to",
                                "2026-11-01"], env=cli_env, capture_output=True, text=True, timeout=120,
                               cwd=Path(__file__).parents[2])
    assert recompute.returncode == 0, recompute.stderr
    assert json.loads(recompute.stdout)["from"] == "2026-11-01" and token not in recompute.stdout + recompute.stderr

    kids = children_of(proc.pid)
    assert len(kids) >= 6  # four services, the console and the broker
    assert "open the console: http://127.0.0.1:" in text
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    time.sleep(0.5)
    assert [k for k in kids if alive(k)] == []
    assert "[run] stopped" in log.read_text()
    assert json.loads((data / "suite.json").read_text())["status"] == "stopped"


def test_a_child_that_dies_is_reported_and_the_suite_stops(runner) -> None:
    proc, ports, log = runner
    wait_healthy(ports, proc)
    kids = children_of(proc.pid)
    victim = next(k for k in kids if "services.metrics" in Path(f"/proc/{k}/cmdline").read_text())
    os.kill(victim, signal.SIGKILL)
    assert proc.wait(timeout=30) == 1
    assert "service metrics exited with code -9" in log.read_text()
    time.sleep(0.5)
    assert [k for k in kids if alive(k)] == []
