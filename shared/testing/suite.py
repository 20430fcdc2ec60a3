"""The whole suite as real processes, for end-to-end and fault-injection tests.

``Suite`` starts its own embedded broker (so it can be paused), one database per service, and the
four services with ``python -m services.<name>``, exactly as ``make run`` does; tests then drive
it only over HTTP and Kafka. ``WebhookReceiver`` is a real HTTP server that records what it gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from shared.events.broker import EmbeddedBroker, free_port
from shared.testing.helpers import ADMIN_TOKEN, TEST_API_KEYS, unique_prefix

SERVICES = ("handoff", "lifecycle", "metrics", "notifier")


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (Linux /proc; elsewhere True)."""
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return True
    inodes = {f[9] for f in (line.split() for line in table)
              if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port}
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", f"services.{self.name}"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:  # noqa: S310
                    # Ready only if the answer came from this process: tests on other workers pick free ports
                    # too, and another suite's service may have taken this one first.
                    if r.status == 200 and _listens(self.process.pid, self.port):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.logs()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commits."""
        self.stop(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Suite:
    """Four service processes on one broker; build with :meth:`start`."""

    root: Path
    database_urls: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    broker: EmbeddedBroker | None = None
    prefix: str = field(default_factory=unique_prefix)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    extras: list[ServiceProcess] = field(default_factory=list)
    ready_timeout: float = 180.0  # a loaded 2-core CI machine can take a minute to import four apps

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap

    def start(self) -> Suite:
        self.root.mkdir(parents=True, exist_ok=True)
        self.broker = EmbeddedBroker(log_path=self.root / "broker.log").start()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_URL", "POSTSALES_"))}
        base |= {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPIC_PREFIX": self.prefix,
            "KAFKA_TOPIC_PARTITIONS": "4",
            "POSTSALES_API_KEYS": json.dumps(TEST_API_KEYS),
            "POSTSALES_DATA_DIR": str(self.root / "data"),
            "OUTBOX_POLL_INTERVAL": "0.05",
            # A paused broker must turn POST /v1/events into a prompt 503, not a long wait.
            "METRICS_INGEST_PUBLISH_TIMEOUT": "2",
            "LOG_LEVEL": "DEBUG",
        }
        for name in SERVICES:
            env = base | {"DATABASE_URL": self.database_urls[name], f"{name.upper()}_PORT": str(free_port())}
            env |= self.extra_env | self.service_env.get(name, {})
            self.services[name] = ServiceProcess(name, int(env[f"{name.upper()}_PORT"]), env,
                                                 self.root / f"{name}.log")
        for svc in self.services.values():
            svc.start()
        for svc in self.services.values():
            self._wait_ready(svc)
        return self

    def _wait_ready(self, svc: ServiceProcess) -> None:
        """Wait for ``svc``; if another process took its free port meanwhile, move it to a new one."""
        for _ in range(3):
            try:
                svc.wait_ready(self.ready_timeout)
                return
            except RuntimeError as exc:
                if "address already in use" not in str(exc):
                    raise
            svc.stop()
            svc.port = free_port()
            svc.env = svc.env | {f"{svc.name.upper()}_PORT": str(svc.port)}
            svc.start()
        svc.wait_ready(self.ready_timeout)

    def restart(self, name: str, *, kill: bool = False) -> None:
        svc = self.services[name]
        if kill:
            svc.kill()
        else:
            svc.stop()
        svc.start()
        self._wait_ready(svc)

    def spawn(self, name: str, **env: str) -> ServiceProcess:
        """Start (not wait for) one more process of ``name`` on the same database and broker, e.g. a
        second consumer of its groups; ``env`` overrides its environment. :meth:`stop` stops it too."""
        base = self.services[name]
        port = free_port()
        extra = ServiceProcess(name, port, base.env | {f"{name.upper()}_PORT": str(port)} | env,
                               self.root / f"{name}-extra-{len(self.extras) + 1}.log")
        self.extras.append(extra)
        extra.start()
        return extra

    def url(self, name: str) -> str:
        return self.services[name].url

    def client(self, name: str, token: str = ADMIN_TOKEN) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url(name), headers={"Authorization": f"Bearer {token}"},
                                 timeout=30)

    def stop(self) -> None:
        if self.broker is not None and self.broker.process is not None:
            self.broker.resume()  # a test that failed mid-pause must not leave the services hanging
        for svc in [*self.extras, *self.services.values()]:
            svc.stop()
        if self.broker is not None:
            self.broker.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A real HTTP receiver on 127.0.0.1 that records requests; it can be down, failing or slow."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.status = 200
        self.delay = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.status
                if status < 300:
                    with receiver._lock:
                        receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                          body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Down: the port refuses connections until :meth:`start` is called again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self._lock:
            return [r for r in self.received if predicate(r)]


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 to ``target`` that can be cut and restored, to make a database
    unreachable for one service without touching the server (other tests use it)."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut or stopped
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    upstream.close()
                    return
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns -= {src, dst}

    def cut(self) -> None:
        """Refuse new connections and reset the live ones, until :meth:`restore`."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            listener.close()
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        """Listen again (a no-op when not cut)."""
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self.cut()


def proxied_url(database_url: str, proxy: TcpProxy) -> str:
    """``database_url`` with its host and port replaced by the proxy's."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def database_endpoint(database_url: str) -> tuple[str, int]:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return url.host or "127.0.0.1", url.port or 5432
