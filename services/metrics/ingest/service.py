"""Validate events posted over HTTP and publish them to their topics; record survey responses."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.ingest.schemas import MAX_EVENTS, IngestResult, Rejection, SurveyIn, SurveyOut
from services.metrics.usage.envelope import UsageDecoder, describe
from services.metrics.validation import Bounds, check_ingestible
from shared.db import utcnow
from shared.errors import ServiceUnavailable, Unprocessable
from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.outbox import Outbox
from shared.events.registry import USAGE_PREFIX, USAGE_TOPIC

SOURCE = "/services/metrics"


class _Head(msgspec.Struct):
    type: str = ""


_batch = msgspec.json.Decoder(list[msgspec.Raw])
_head = msgspec.json.Decoder(_Head)


@dataclass(frozen=True, slots=True)
class Accepted:
    topic: str  # logical topic
    key: bytes  # the account id (the event's subject)
    value: bytes  # the item exactly as posted


def parse_batch(body: bytes) -> list[msgspec.Raw]:
    """Split the request body into its items, unparsed; 422 unless it is a JSON array of at most MAX_EVENTS."""
    try:
        items = _batch.decode(body)
    except msgspec.ValidationError:
        raise Unprocessable("the body must be a JSON array of CloudEvents",
                            errors=[{"loc": ["body"], "msg": "not an array"}]) from None
    except msgspec.DecodeError as exc:
        raise Unprocessable(f"the body is not valid JSON: {exc}",
                            errors=[{"loc": ["body"], "msg": "invalid JSON"}]) from None
    if len(items) > MAX_EVENTS:
        raise Unprocessable(f"at most {MAX_EVENTS} events per request (got {len(items)})",
                            errors=[{"loc": ["body"], "msg": f"more than {MAX_EVENTS} items"}])
    return items


def check_item(raw: msgspec.Raw, decode_usage: UsageDecoder) -> Accepted:
    """Validate one item; raises ``InvalidEvent`` with the reason."""
    value = bytes(raw)
    try:
        event_type = _head.decode(value).type
    except msgspec.ValidationError as exc:
        if "Expected `object`" in str(exc):
            raise InvalidEvent("a CloudEvent must be a JSON object") from None
        raise InvalidEvent(describe(exc)) from None
    if event_type.startswith(USAGE_PREFIX):
        usage = decode_usage(value)  # the hot path: msgspec, as the usage consumer reads it
        return Accepted(USAGE_TOPIC, usage.subject.encode(), value)
    event = CloudEvent.from_bytes(value)
    return Accepted(check_ingestible(event, decode_usage.bounds), event.subject.encode(), value)


async def ingest(producer: AIOKafkaProducer, topic_prefix: str, items: Sequence[msgspec.Raw], *,
                 timeout: float, bounds: Bounds) -> IngestResult:
    """Publish the valid items to their topics and wait for the broker's acknowledgement (acks=all).

    No outbox here: a request changes no state of this service, so there is nothing to commit
    together with the events. A 202 means the broker has them; a 503 means some may be published
    and others not, and the client retries the whole request: events are counted once by
    ``source`` + ``id``, so a retry never double counts. A non-empty batch with no valid item is a 422
    listing every rejection (nothing is published).
    """
    accepted: list[Accepted] = []
    rejected: list[Rejection] = []
    decoder = UsageDecoder(bounds)
    for index, raw in enumerate(items):
        try:
            accepted.append(check_item(raw, decoder))
        except InvalidEvent as exc:
            rejected.append(Rejection(index=index, error=str(exc)))
    if rejected and not accepted:
        raise Unprocessable(
            f"no event in the batch is valid ({len(rejected)} rejected)",
            errors=[{"loc": ["body", r.index], "msg": r.error} for r in rejected],
            rejected=[r.model_dump() for r in rejected])
    if accepted:
        await _publish(producer, topic_prefix, accepted, timeout=timeout)
    return IngestResult(accepted=len(accepted), rejected=rejected)


async def _publish(producer: AIOKafkaProducer, topic_prefix: str, accepted: list[Accepted], *,
                   timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            # send() only queues the message (batched per partition); the futures resolve on acks.
            futures = [await producer.send(topic_prefix + a.topic, value=a.value, key=a.key) for a in accepted]
            await asyncio.gather(*futures)
    except (KafkaError, TimeoutError) as exc:
        raise ServiceUnavailable(
            f"the event bus did not acknowledge the events within {timeout:g} s ({type(exc).__name__}); "
            "some may have been published: retry the request (events are counted once by source + id)",
            headers={"Retry-After": "5"}) from None


async def post_survey(session: AsyncSession, outbox: Outbox, body: SurveyIn, bounds: Bounds) -> SurveyOut:
    now = utcnow()
    at = body.at or now
    try:
        bounds.check_time(at, now, "at")
    except InvalidEvent as exc:
        raise Unprocessable(str(exc), errors=[{"loc": ["body", "at"], "msg": str(exc)}]) from None
    event = CloudEvent.new(type=f"postsales.survey.{body.kind}", source=SOURCE, subject=body.account_id, time=at,
                           data={"score": body.score, "respondent": body.respondent, "comment": body.comment})
    await outbox.add(session, event)
    return SurveyOut(event_id=event.id, account_id=body.account_id, kind=body.kind, score=body.score,
                     respondent=body.respondent, comment=body.comment, at=at)
