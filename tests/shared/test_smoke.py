from __future__ import annotations

from shared.events.registry import LIFECYCLE_TOPIC
from shared.testing import eventually
from tests.shared import demo
from tests.shared.conftest import count


async def test_note_event_roundtrip(demo_service, kafka) -> None:
    async with demo_service() as svc:
        r = await svc.client.post("/v1/notes", json={"id": "n1", "account_id": "acme", "text": "hello"})
        assert r.status_code == 201, r.text
        events = await eventually(lambda: kafka.events(LIFECYCLE_TOPIC, settle=0.2))
        assert [e.subject for e in events] == ["acme"]

        async def applied() -> bool:
            return await count(svc, demo.Applied) == 1

        await eventually(applied)
