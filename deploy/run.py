"""The local runner behind ``make run``: broker, migrations, the four services, clean shutdown.

- Starts the embedded Kafka-protocol broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set.
- Generates a development token (kept in ``$POSTSALES_DATA_DIR/dev-token``) unless
  ``POSTSALES_API_KEYS`` is set, and prints it.
- Migrates each service's database, starts each service as a child process, waits for its
  ``/healthz`` and prints the URLs.
- Writes what it started to ``$POSTSALES_DATA_DIR/suite.json`` (URLs, broker, token file), which the
  ``postsales`` CLI reads; the file is marked stopped on exit.
- Ctrl-C (or SIGTERM) stops every child; a child that dies is reported and stops the suite.
  Children also get SIGTERM from the kernel if the runner itself is killed (no orphans).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

from deploy.cli import suitefile
from shared.events.broker import EmbeddedBroker, free_port, wait_for_port

SERVICES: dict[str, int] = {"handoff": 8001, "lifecycle": 8002, "metrics": 8003, "notifier": 8004, "console": 8005}
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def dev_keys(data_dir: Path) -> tuple[str, str]:
    """The development token (created once, mode 0600) and the POSTSALES_API_KEYS value for it."""
    path = data_dir / "dev-token"
    if path.exists():
        token = path.read_text().strip()
    else:
        token = "dev-" + secrets.token_urlsafe(24)
        path.touch(mode=0o600)
        path.write_text(token + "\n")
    return token, json.dumps({token: ["admin"]})


def console_session_key(data_dir: Path) -> str:
    """The console's cookie-encryption key for development (created once, mode 0600)."""
    path = data_dir / "console-session-key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as r:  # noqa: S310 - local http URL
            return bool(r.status == 200)
    except OSError:
        return False


class Runner:
    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.data_dir = Path(self.env.setdefault("POSTSALES_DATA_DIR", "data")).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env["POSTSALES_DATA_DIR"] = str(self.data_dir)
        self.broker: EmbeddedBroker | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.suite_file: Path | None = None

    def port(self, name: str) -> int:
        return int(self.env.get(f"{name.upper()}_PORT") or SERVICES[name])

    def start(self) -> None:
        if not self.env.get("KAFKA_BOOTSTRAP_SERVERS"):
            port = int(self.env.get("POSTSALES_BROKER_PORT") or 9092)
            try:
                wait_for_port("127.0.0.1", port, timeout=0.2)
                port = free_port()  # 9092 is taken (another broker?): use a free port instead
            except TimeoutError:
                pass
            self.broker = EmbeddedBroker(port, log_path=self.data_dir / "broker.log").start()
            self.env["KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap
            say(f"embedded broker (Tansu) on {self.broker.bootstrap}")
        else:
            say(f"using Kafka at {self.env['KAFKA_BOOTSTRAP_SERVERS']}")
        token = None
        if not self.env.get("POSTSALES_API_KEYS"):
            token, keys = dev_keys(self.data_dir)
            self.env["POSTSALES_API_KEYS"] = keys
        self.env.setdefault("CONSOLE_SESSION_KEY", console_session_key(self.data_dir))
        for name in SERVICES:
            if name != "console":
                self.env.setdefault(f"CONSOLE_{name.upper()}_URL", f"http://127.0.0.1:{self.port(name)}")
        for name in SERVICES:
            say(f"migrating {name}")
            subprocess.run([sys.executable, "-m", f"services.{name}", "migrate"], env=self.env, check=True)  # noqa: S603
        for name in SERVICES:
            env = dict(self.env)
            env[f"{name.upper()}_PORT"] = str(self.port(name))
            self.children[name] = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", f"services.{name}"], env=env, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 60
        pending = set(SERVICES)
        while pending and time.monotonic() < deadline:
            self.check_children()
            for name in list(pending):
                if healthy(f"http://127.0.0.1:{self.port(name)}"):
                    pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"services not healthy after 60s: {sorted(pending)}")
        self.write_suite_file(token is not None)
        for name in SERVICES:
            say(f"{name:<10} {self.url(name)}  (docs: /docs)")
        if token:
            say(f"development token (admin): {token}")
            say(f'try: curl -H "Authorization: Bearer {token}" {self.url("handoff")}/v1/handoffs')
        for line in cli_hints():
            say(line)
        if token:
            silent = rules_without_channel(self.url("notifier"), token)
            if silent:
                say(f"{len(silent)} alert rules notify no one yet ({', '.join(silent)}): create a channel with "
                    '"default": true, or give the rules channels (docs/notifier.md)')
        say(f"open the console: {self.url('console')}/ (sign in with the token)")
        say("all four services are up, the console too; Ctrl-C stops everything")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    def write_suite_file(self, dev_token: bool) -> None:
        """What was started, for the CLI; only SQLite URLs are recorded (they hold no password)."""
        databases = {name: f"sqlite+aiosqlite:///{self.data_dir / (name + '.db')}" for name in SERVICES
                     if name != "console"  # the console keeps no database
                     and not (self.env.get("DATABASE_URL") or self.env.get(f"{name.upper()}_DATABASE_URL"))}
        self.suite_file = suitefile.path(self.data_dir)
        suitefile.write(self.suite_file, suitefile.SuiteFile(
            services={name: self.url(name) for name in SERVICES},
            bootstrap=self.env["KAFKA_BOOTSTRAP_SERVERS"], topic_prefix=self.env.get("KAFKA_TOPIC_PREFIX", ""),
            embedded_broker=self.broker is not None,
            token_file=str(self.data_dir / "dev-token") if dev_token else None,
            databases=databases, pid=os.getpid(), status="running",
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
        say(f"wrote {self.suite_file} (the postsales CLI reads it)")

    def check_children(self) -> None:
        for name, proc in self.children.items():
            code = proc.poll()
            if code is not None and not self.stopping:
                raise ChildDied(f"service {name} exited with code {code}; stopping the suite")

    def stop(self) -> None:
        self.stopping = True
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in self.children.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in time; killing it")
                proc.kill()
                proc.wait()
        if self.suite_file is not None:
            with contextlib.suppress(OSError):
                suitefile.mark_stopped(self.suite_file, os.getpid())
        if self.broker is not None:
            self.broker.stop()
        say("stopped")


def rules_without_channel(notifier_url: str, token: str) -> list[str]:
    """Names of the alert rules that would notify no one (advisory: an error here just says nothing)."""
    request = urllib.request.Request(  # noqa: S310 - the notifier this runner started
        notifier_url + "/v1/rules?limit=500", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310
            items = json.loads(r.read())["items"]
    except (OSError, ValueError, KeyError):
        return []
    return [str(rule["name"]) for rule in items if rule.get("enabled", True) and rule.get("deliverable") is False]


def cli_hints() -> list[str]:
    """The banner's "try the CLI" lines, with the path to the installed command."""
    exe = Path(sys.executable).parent / "postsales"
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    cli = str(exe) if exe.exists() else "postsales"
    return ["ops CLI (finds this suite by itself):",
            f"  {cli} lag                              consumer lag per group and partition",
            f"  {cli} outbox                           unpublished events per service",
            f"  {cli} alerts tail                      follow the notifier's alerts",
            f"  {cli} dlq list postsales.usage.v1      dead-lettered messages of a topic",
            f"  {cli} --help                           everything else"]


class ChildDied(RuntimeError):
    pass


def main() -> int:
    runner = Runner()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Shut down once: a second Ctrl-C must not interrupt the shutdown itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        runner.start()
        while True:
            runner.check_children()
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except (ChildDied, RuntimeError, subprocess.CalledProcessError) as exc:
        say(f"error: {exc}")
        return 1
    finally:
        runner.stop()


if __name__ == "__main__":
    sys.exit(main())
