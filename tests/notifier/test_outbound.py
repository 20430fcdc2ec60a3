"""Outbound safety: link-local and cloud-metadata targets refused at creation and at send time
(after DNS), loopback/private allowed, redirects not followed, response bodies read bounded."""

from __future__ import annotations

import asyncio
import time

from services.notifier.outbound import blocked_reason
from shared.testing import eventually, make_event
from tests.notifier.conftest import FAST, Receiver, deliveries, free_port, inject, rule, webhook_channel


def test_blocked_addresses() -> None:
    for address in ("169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254",
                    "100.100.100.200"):
        assert blocked_reason(address) is not None, address
    for address in ("127.0.0.1", "::1", "10.0.0.5", "192.168.1.10", "172.16.0.1", "93.184.216.34", "fd12::1"):
        assert blocked_reason(address) is None, address


async def test_link_local_and_metadata_targets_refused_at_creation(service) -> None:
    async with service("notifier", run_consumers=False, run_relay=False) as svc:
        svc.ctx.extension.resolver.overrides["sneaky.example.test"] = ["10.0.0.1", "169.254.169.254"]
        for kind, url in (("webhook", "http://169.254.169.254/latest/meta-data/"),
                          ("webhook", "http://[fe80::1]:8080/hook"),
                          ("slack", "https://metadata.google.internal/computeMetadata/v1/"),
                          ("webhook", "http://[::ffff:169.254.169.254]/"),
                          ("slack", "https://sneaky.example.test/hook")):
            r = await svc.client.post("/v1/channels", json={"name": "x", "kind": kind, "url": url})
            assert r.status_code == 422, (url, r.text)
            err = next(e for e in r.json()["errors"] if e["loc"] == ["body", "url"])
            assert "NOTIFIER_ALLOW_LINK_LOCAL_TARGETS" in err["msg"], err
        assert (await svc.client.get("/v1/channels")).json()["items"] == []
        # Loopback and private ranges are the norm for internal receivers.
        for i, url in enumerate(("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://192.168.0.2/x")):
            await webhook_channel(svc, url, name=f"ok-{i}")

    async with service("notifier", run_consumers=False, run_relay=False, allow_link_local_targets=True) as svc:
        await webhook_channel(svc, "http://169.254.169.254/latest/meta-data/")


async def test_name_that_resolves_to_link_local_at_send_time_is_refused(service, receiver) -> None:
    async with service("notifier", run_consumers=False, run_relay=False, delivery_max_attempts=5, **FAST) as svc:
        resolver = svc.ctx.extension.resolver
        resolver.overrides["hooks.internal.test"] = ["127.0.0.1"]
        ch = await webhook_channel(svc, f"http://hooks.internal.test:{receiver.port}/hook")
        await rule(svc, name="csat-low", event_type="postsales.survey.csat", conditions={"data.score": {"lt": 3}},
                   group_wait="0s", repeat_interval="1h", channels=[ch["id"]])
        await inject(svc, make_event("postsales.survey.csat", "first", {"score": 1}))

        async def delivered() -> bool:
            return bool(await deliveries(svc, status="delivered"))

        await eventually(delivered, timeout=20)
        assert len(receiver.requests) == 1  # the real receiver, reached by name

        # The name now resolves to the metadata address (DNS rebinding): refused, not retried.
        resolver.overrides["hooks.internal.test"] = ["169.254.169.254"]
        await inject(svc, make_event("postsales.survey.csat", "second", {"score": 1}))

        async def dead() -> list:
            return await deliveries(svc, status="dead")

        (d,) = await eventually(dead, timeout=20)
        assert d.attempts == 1 and "refused" in (d.last_error or "") and "169.254.169.254" in (d.last_error or "")
        assert len(receiver.requests) == 1

        # The test endpoint goes through the same guard.
        r = await svc.client.post(f"/v1/channels/{ch['id']}/test")
        assert r.status_code == 200 and r.json()["ok"] is False and "refused" in r.json()["error"]
        resolver.overrides["hooks.internal.test"] = ["127.0.0.1"]
        r = await svc.client.post(f"/v1/channels/{ch['id']}/test")
        assert r.json()["ok"] is True and len(receiver.requests) == 2


async def test_redirects_are_not_followed(service, receiver) -> None:
    async with service("notifier", run_consumers=False, run_relay=False, delivery_max_attempts=1, **FAST) as svc:
        receiver.status = 302
        ch = await webhook_channel(svc, receiver.url("/hook"))
        await rule(svc, name="csat-low", event_type="postsales.survey.csat", conditions={"data.score": {"lt": 3}},
                   group_wait="0s", channels=[ch["id"]])
        await inject(svc, make_event("postsales.survey.csat", "acme", {"score": 1}))

        async def dead() -> list:
            return await deliveries(svc, status="dead")

        (d,) = await eventually(dead, timeout=20)
        assert "HTTP 302" in (d.last_error or "") and "not followed" in (d.last_error or "")
        assert [r.path for r in receiver.requests] == ["/hook"]


async def test_endless_error_body_is_read_bounded(service) -> None:
    """A target answering 500 with a body that never ends: the send finishes promptly anyway."""
    port = free_port()
    served = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 500 Boom\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
            served.set()
            chunk = b"x" * 65536
            while True:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        async with service("notifier", run_consumers=False, run_relay=False, delivery_max_attempts=1,
                           **{**FAST, "delivery_timeout": 5.0, "delivery_lease": 10.0}) as svc:
            ch = await webhook_channel(svc, f"http://127.0.0.1:{port}/hook")
            await rule(svc, name="csat-low", event_type="postsales.survey.csat",
                       conditions={"data.score": {"lt": 3}}, group_wait="0s", channels=[ch["id"]])
            started = time.monotonic()
            await inject(svc, make_event("postsales.survey.csat", "acme", {"score": 1}))

            async def dead() -> list:
                return await deliveries(svc, status="dead")

            (d,) = await eventually(dead, timeout=20)
            assert served.is_set()
            assert (d.last_error or "").startswith("HTTP 500") and "timed out" not in (d.last_error or "")
            assert time.monotonic() - started < 5.0
    finally:
        server.close()


async def test_unreachable_target_times_out(service) -> None:
    silent = Receiver(delay=30)
    await silent.start()
    try:
        async with service("notifier", run_consumers=False, run_relay=False, delivery_max_attempts=1,
                           **{**FAST, "delivery_timeout": 0.5, "delivery_lease": 5.0}) as svc:
            ch = await webhook_channel(svc, silent.url())
            await rule(svc, name="csat-low", event_type="postsales.survey.csat",
                       conditions={"data.score": {"lt": 3}}, group_wait="0s", channels=[ch["id"]])
            await inject(svc, make_event("postsales.survey.csat", "acme", {"score": 1}))

            async def dead() -> list:
                return await deliveries(svc, status="dead")

            (d,) = await eventually(dead, timeout=20)
            assert "timed out" in (d.last_error or "")
    finally:
        await silent.stop()
