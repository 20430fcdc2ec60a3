"""Request and response models of channels."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.types import Bool, Int

Kind = Literal["webhook", "slack", "email"]
Lang = Literal["en", "ja"]


class SmtpIn(BaseModel):
    """SMTP relay for an email channel; every field falls back to the service's SMTP_* settings."""

    model_config = ConfigDict(extra="forbid")
    host: str | None = Field(default=None, max_length=255, examples=["smtp.example.com"])
    port: Int | None = Field(default=None, ge=1, le=65535, examples=[587])
    tls: Literal["starttls", "tls", "none"] | None = Field(default=None, examples=["starttls"])
    from_address: str | None = Field(default=None, max_length=320, examples=["alerts@example.com"])
    username: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=500, description="Stored encrypted, never returned.")


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "cs-webhook", "kind": "webhook", "url": "https://hooks.example.com/postsales"},
        {"name": "cs-slack", "kind": "slack", "url": "https://hooks.slack.com/services/T000/B000/XXXX", "lang": "ja"},
        {"name": "csm-email", "kind": "email", "address": "csm-team@example.com",
         "smtp": {"host": "smtp.example.com", "port": 587, "tls": "starttls", "from_address": "alerts@example.com"}},
    ]})
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    url: str | None = Field(default=None, max_length=2000, description="webhook / slack: http(s) URL.")
    address: str | None = Field(default=None, max_length=320, description="email: the recipient.")
    secret: str | None = Field(
        default=None, max_length=200,
        description="webhook: `whsec_<base64>` (24-64 bytes); generated when omitted, returned only now.")
    smtp: SmtpIn | None = None
    lang: Lang | None = Field(default=None, description="Language of messages on this channel (en, ja).")
    default: Bool = Field(default=False, description="Rules without channels notify the default channels.")


class SmtpOut(BaseModel):
    host: str
    port: int
    tls: str
    from_address: str
    username: str | None = None
    has_password: bool = False


class ChannelOut(BaseModel):
    id: str
    name: str
    kind: Kind
    url: str | None = None
    address: str | None = None
    smtp: SmtpOut | None = None
    lang: Lang | None = None
    default: bool
    has_secret: bool = Field(description="Whether a signing secret / password is stored (never shown).")
    created_at: dt.datetime
    updated_at: dt.datetime


class ChannelCreated(ChannelOut):
    secret: str | None = Field(
        default=None, description="webhook: the signing secret. Shown only in this response; store it now.")


class TestResult(BaseModel):
    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int
