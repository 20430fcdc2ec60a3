"""Channel secrets at rest: HKDF-derived keys, key ids, rotation (first key encrypts, all decrypt,
stale secrets re-encrypted by the maintenance pass), and values stored before HKDF still work."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from standardwebhooks import Webhook

from services.notifier.crypto import SecretBox, key_id, load_keys
from services.notifier.models import Channel
from shared.testing import eventually, make_event
from tests.notifier.conftest import FAST, inject, rule, webhook_channel

OLD = "old-master-key-0123456789abcdef"
NEW = "new-master-key-fedcba9876543210"


def _legacy_encrypt(configured: str, plaintext: str) -> str:
    """What the notifier stored before HKDF (``v1``): sha256 over a prefix and sha256(key)."""
    key = hashlib.sha256(b"notifier-secret-enc" + hashlib.sha256(configured.encode()).digest()).digest()
    nonce = secrets.token_bytes(12)
    ct = AESGCM(key).encrypt(nonce, plaintext.encode(), b"postsales-notifier-channel-secret")
    return "v1:" + base64.urlsafe_b64encode(nonce + ct).decode()


def test_rotation_first_key_encrypts_all_decrypt(tmp_path: Path) -> None:
    old = SecretBox(load_keys(OLD, tmp_path))
    token = old.encrypt("whsec_x")
    assert token.startswith(f"v2:{key_id(OLD.encode())}:") and "whsec_x" not in token
    rotated = SecretBox(load_keys(f"{NEW}, {OLD}", tmp_path))
    assert rotated.decrypt(token) == "whsec_x" and not rotated.is_current(token)
    fresh = rotated.encrypt("whsec_x")
    assert rotated.is_current(fresh) and fresh != token
    only_new = SecretBox(load_keys(NEW, tmp_path))
    with pytest.raises(ValueError, match="no longer lists"):
        only_new.decrypt(token)
    tampered = fresh[:-4] + ("AAAA" if not fresh.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        rotated.decrypt(tampered)
    # Pre-HKDF values decrypt under the key that made them, and nothing else.
    legacy = _legacy_encrypt(OLD, "whsec_legacy")
    assert rotated.decrypt(legacy) == "whsec_legacy" and not rotated.is_current(legacy)
    with pytest.raises(ValueError):
        only_new.decrypt(legacy)


def test_key_file_is_created_once_and_old_file_values_decrypt(tmp_path: Path) -> None:
    keys = load_keys(None, tmp_path)
    assert load_keys(None, tmp_path) == keys
    assert (tmp_path / "notifier-secret.key").stat().st_mode & 0o777 == 0o600
    raw = keys[0].material
    legacy_key = hashlib.sha256(b"notifier-secret-enc" + raw).digest()
    nonce = secrets.token_bytes(12)
    ct = AESGCM(legacy_key).encrypt(nonce, b"whsec_file", b"postsales-notifier-channel-secret")
    assert SecretBox(keys).decrypt("v1:" + base64.urlsafe_b64encode(nonce + ct).decode()) == "whsec_file"


async def _stored(svc, channel_id: str) -> str:
    async with svc.ctx.session_factory() as s:
        token = (await s.execute(select(Channel.secret_enc).where(Channel.id == channel_id))).scalar_one()
    assert token is not None
    return str(token)


async def test_rotation_in_a_running_service_keeps_signatures_valid(service, receiver) -> None:
    common = {**FAST, "run_consumers": False, "run_relay": False, "retention_interval": 0.2}
    async with service("notifier", secret_key=OLD, **common) as svc:
        url = svc.ctx.settings.database_url
        ch = await webhook_channel(svc, receiver.url())
        await rule(svc, name="csat-low", event_type="postsales.survey.csat", conditions={"data.score": {"lt": 3}},
                   group_wait="0s", channels=[ch["id"]])
        assert (await _stored(svc, ch["id"])).startswith(f"v2:{key_id(OLD.encode())}:")
        # A second channel whose secret was stored before HKDF.
        legacy = await webhook_channel(svc, receiver.url("/legacy"), name="legacy")
        async with svc.ctx.session_factory() as s, s.begin():
            await s.execute(update(Channel).where(Channel.id == legacy["id"])
                            .values(secret_enc=_legacy_encrypt(OLD, legacy["secret"])))

    async with service("notifier", secret_key=f"{NEW},{OLD}", database_url=url, **common) as svc:
        new_prefix = f"v2:{key_id(NEW.encode())}:"

        async def reencrypted() -> bool:
            tokens = [await _stored(svc, c["id"]) for c in (ch, legacy)]
            return all(t.startswith(new_prefix) for t in tokens)

        await eventually(reencrypted, timeout=20)
        metrics = (await svc.client.get("/metrics")).text
        assert "notifier_secrets_reencrypted_total 2.0" in metrics

    # The old key is gone: every secret still opens and signs as the receiver expects.
    async with service("notifier", secret_key=NEW, database_url=url, **common) as svc:
        await inject(svc, make_event("postsales.survey.csat", "acme", {"score": 1}))

        async def got() -> bool:
            return len(receiver.requests) == 1

        await eventually(got, timeout=20)
        req = receiver.requests[0]
        Webhook(ch["secret"]).verify(req.body, req.headers)
        assert json.loads(req.body)["type"] == "postsales.alert.fired"
        await rule(svc, name="legacy-rule", event_type="postsales.survey.csat", group_wait="0s",
                   channels=[legacy["id"]])
        await inject(svc, make_event("postsales.survey.csat", "other", {"score": 5}))
        await eventually(lambda: _has(receiver, "/legacy"), timeout=20)
        lreq = next(r for r in receiver.requests if r.path == "/legacy")
        Webhook(legacy["secret"]).verify(lreq.body, lreq.headers)


async def _has(receiver, path: str) -> bool:
    return any(r.path == path for r in receiver.requests)
