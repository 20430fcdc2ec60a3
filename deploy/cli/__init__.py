"""``postsales``: the operations CLI of the suite, one module per command group.

Kafka commands read ``KAFKA_BOOTSTRAP_SERVERS`` and ``KAFKA_TOPIC_PREFIX`` like the services do; HTTP
commands take ``--url``/``--token`` (or ``POSTSALES_<SERVICE>_URL``/``POSTSALES_TOKEN``). Without
them, the CLI uses the suite ``make run`` is running (``data/suite.json``). Tokens are never printed,
except by ``hash-token`` which makes them.
"""

from __future__ import annotations

import typer

from deploy.cli import alerts, dlq, lag, outbox, recompute, tokens, webhooks

app = typer.Typer(name="postsales", help="Operations CLI of the post-sales suite: DLQ, outbox backlog, consumer "
                  "lag, API tokens, metrics recompute, alerts, a local webhook receiver. Finds the suite "
                  "`make run` started by itself.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(dlq.app, name="dlq")
app.add_typer(alerts.app, name="alerts")
app.add_typer(webhooks.app, name="webhooks")
app.command()(outbox.outbox)
app.command()(lag.lag)
app.command("hash-token")(tokens.hash_token_cmd)
app.command()(recompute.recompute)


def main() -> None:
    app()
