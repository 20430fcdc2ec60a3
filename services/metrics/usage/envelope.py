"""The usage event as the ingestion hot path reads it: decoded and validated in one pass.

A usage event is a CloudEvent (DESIGN.md) whose ``type`` is ``usage.<name>`` and whose ``data``
carries ``user_id`` (required), ``feature`` (optional) and ``quantity`` (a finite number from 0 to
``METRICS_MAX_QUANTITY``, default 1), and whose ``time`` is within the configured bounds (no further
than ``METRICS_MAX_FUTURE_SKEW`` ahead, no older than ``METRICS_MAX_EVENT_AGE``).
msgspec decodes and checks such a document several times faster than ``json.loads`` alone, which
is what lets the consumer keep pace with the topic. Unknown attributes (CloudEvents extensions)
and unknown ``data`` fields are allowed and ignored.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Literal

import msgspec

from services.metrics.models import ID
from services.metrics.validation import DEFAULT_BOUNDS, Bounds
from shared.db import utcnow
from shared.events.envelope import InvalidEvent

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID)]


class UsageData(msgspec.Struct, frozen=True, gc=False):
    user_id: Id
    feature: Id | None = None
    # Finite: msgspec's JSON has no NaN or Infinity and refuses numbers out of the double's range.
    quantity: Annotated[float, msgspec.Meta(ge=0)] = 1.0


class UsageEnvelope(msgspec.Struct, frozen=True, gc=False):
    """A CloudEvents 1.0 usage event (structured mode)."""

    specversion: Literal["1.0"]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    # ``usage.`` prefix checked by the decoder: a ``pattern`` here runs a regex per event, which alone
    # cost as much as decoding the rest of the event.
    type: Annotated[str, msgspec.Meta(min_length=7, max_length=200)]
    time: Annotated[dt.datetime, msgspec.Meta(tz=True)]
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    data: UsageData

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.source, self.id)


_decoder = msgspec.json.Decoder(UsageEnvelope)
_decode = _decoder.decode
_monotonic = time.monotonic


def describe(exc: msgspec.ValidationError) -> str:
    """``data.user_id: Expected `str` …`` from msgspec's ``Expected `str` … - at `$.data.user_id```."""
    message, sep, where = str(exc).rpartition(" - at `$")
    if not sep:
        return f"(event): {exc}"
    return f"{where.rstrip('`').lstrip('.') or '(event)'}: {message}"


class UsageDecoder:
    """Decodes one usage event (a message of the usage topic, an item of ``POST /v1/events``) and checks
    it against the bounds; raises ``InvalidEvent``: the consumer dead-letters the message, the endpoint
    rejects the item."""

    def __init__(self, bounds: Bounds = DEFAULT_BOUNDS) -> None:
        self.bounds = bounds
        self._max_quantity = bounds.max_quantity
        self._read_at = -1.0
        self.now()

    def now(self) -> dt.datetime:
        """The time events are checked against, read at most every 50 ms (a clock read per event costs as
        much as the rest of the check, and the bounds are minutes and years), with the window it allows."""
        at = _monotonic()
        if at - self._read_at > 0.05:
            now = utcnow()
            self._now, self._read_at = now, at
            self._earliest, self._latest = now - self.bounds.max_age, now + self.bounds.max_future_skew
        return self._now

    def __call__(self, raw: bytes | None, topic: str = "") -> UsageEnvelope:
        # Runs once per consumed event: the common case is a few comparisons, the checks that explain
        # a refusal run only when one of them fails.
        if raw is None:
            raise InvalidEvent("empty message")
        try:
            event = _decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidEvent(describe(exc)) from None
        except msgspec.DecodeError as exc:
            raise InvalidEvent(f"not JSON: {exc}") from None
        if not event.type.startswith("usage."):
            raise InvalidEvent(f"type: expected a usage event type (`usage.<name>`), got {event.type!r}")
        if event.data.quantity > self._max_quantity:
            self.bounds.check_quantity(event.data.quantity)
        if _monotonic() - self._read_at > 0.05:
            self.now()
        if not self._earliest <= event.time <= self._latest:
            self.bounds.check_time(event.time, self._now)
        return event


decode_usage = UsageDecoder()
"""The decoder with the default bounds."""
