"""``postsales webhooks listen``: a local receiver for the notifier's signed webhooks.

It answers 204 to every POST and prints one line per delivery: the webhook id, whether its
Standard Webhooks signature verifies with ``--secret`` (the channel's ``whsec_…``), and the body.
Handy to try a channel before pointing it at the real receiver, and to check signatures.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import typer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from deploy.cli.common import fail

app = typer.Typer(help="Receive the notifier's webhooks locally.", no_args_is_help=True)
MAX_BODY = 1_000_000


def verify(secret: str | None, headers: dict[str, str], body: bytes) -> str:
    if not secret:
        return "unchecked"
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError) as exc:
        return f"INVALID ({exc})"
    return "valid"


@app.command("listen")
def listen(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on (127.0.0.1).")] = 9009,
    secret: Annotated[str | None, typer.Option(envvar="POSTSALES_WEBHOOK_SECRET", show_envvar=True,
                                               help="The channel's whsec_ secret, to verify signatures.")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Exit after this many deliveries.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per delivery.")] = False,
) -> None:
    """Print each webhook POSTed to http://127.0.0.1:<port>/ (any path), with its signature check."""
    done = threading.Event()
    received = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("content-length") or 0), MAX_BODY)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            signature = verify(secret, headers, body)
            self.send_response(204)
            self.end_headers()
            try:
                payload: Any = json.loads(body)
            except ValueError:
                payload = body.decode(errors="replace")
            with lock:
                if done.is_set():
                    return
                if as_json:
                    typer.echo(json.dumps({"path": self.path, "webhook_id": headers.get("webhook-id"),
                                           "signature": signature, "body": payload}))
                else:
                    typer.echo(f"{headers.get('webhook-id', '-')}  signature {signature}  {self.path}  "
                               f"{json.dumps(payload)}")
                received[0] += 1
                if count is not None and received[0] >= count:
                    done.set()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {exc}") from None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    typer.echo(f"listening on http://127.0.0.1:{port}/ (Ctrl-C stops)", err=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
