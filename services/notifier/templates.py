"""Notification texts: sandboxed Jinja2 templates in English and Japanese.

A rule may bring its own one-line ``summary`` per language; the frame around it (title, body,
link back to the account) is built in. Templates run in an immutable sandbox: they can read the
context but not call into Python or change anything.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

LANGS = ("en", "ja")
# The type names on the alerts topic; webhooks carry the same (one name per concept).
ALERT_FIRED = "postsales.alert.fired"
ALERT_RESOLVED = "postsales.alert.resolved"
TEST_EVENT_TYPE = "postsales.alert.test"

_env = ImmutableSandboxedEnvironment(autoescape=False, undefined=Undefined, trim_blocks=True, lstrip_blocks=True)

DEFAULT_SUMMARY = {
    "en": "{{ rule }} for {{ account.name or subject }}",
    "ja": "{{ account.name or subject }}: {{ rule }}",
}

_TITLES = {
    "en": {
        "firing": "[{{ severity|upper }}] {{ summary }}",
        "repeat": "[{{ severity|upper }}] Still firing: {{ summary }}",
        "escalation": "[{{ severity|upper }}] ESCALATED (not acknowledged): {{ summary }}",
        "resolved": "[RESOLVED] {{ summary }}",
        "test": "Test notification from the post-sales notifier",
    },
    "ja": {
        "firing": "[{{ severity|upper }}] {{ summary }}",
        "repeat": "[{{ severity|upper }}] 継続中: {{ summary }}",
        "escalation": "[{{ severity|upper }}] エスカレーション (未確認): {{ summary }}",
        "resolved": "[解決] {{ summary }}",
        "test": "ポストセールス通知サービスからのテスト通知",
    },
}

# One template per line; a line that renders empty is left out, so no two facts run together.
# ``{data}`` marks where the event's scalar fields go, one per line.
_BODY_LINES = {
    "en": [
        "Account: {{ account.name or subject }} ({{ subject }})",
        "Rule: {{ rule }} · severity {{ severity }} · status {{ status }}",
        "{% if account.health_band %}Health: {{ account.health_band }}"
        "{% if account.health_score is not none %} ({{ account.health_score }}){% endif %}{% endif %}",
        "Event: {{ event.type }} at {{ event.time }} ({{ event_count }} so far)",
        "{data}",
        "Open the account: {{ link }}",
    ],
    "ja": [
        "アカウント: {{ account.name or subject }} ({{ subject }})",
        "ルール: {{ rule }} ・ 重要度 {{ severity }} ・ 状態 {{ status }}",
        "{% if account.health_band %}ヘルス: {{ account.health_band }}"
        "{% if account.health_score is not none %} ({{ account.health_score }}){% endif %}{% endif %}",
        "イベント: {{ event.type }} ({{ event.time }}、累計 {{ event_count }} 件)",
        "{data}",
        "アカウントを開く: {{ link }}",
    ],
}
_TEST_BODY = {"en": "This channel is configured correctly.", "ja": "このチャネルは正しく設定されています。"}
_LINK_LABEL = {"en": "Open account", "ja": "アカウントを開く"}


def check_template(source: str) -> None:
    """Raise ``ValueError`` if ``source`` is not a valid template."""
    try:
        _env.parse(source)
    except TemplateError as exc:
        raise ValueError(f"invalid template: {exc}") from None


def _render(source: str, context: dict[str, Any]) -> str:
    try:
        return _env.from_string(source).render(**context).strip()
    except TemplateError as exc:
        return f"(template error: {exc})"


def render_summary(templates: dict[str, Any] | None, lang: str, context: dict[str, Any]) -> str:
    chosen = (templates or {}).get(lang) or (templates or {}).get("en") or DEFAULT_SUMMARY[lang]
    return _render(chosen, context)


def _body(lang: str, reason: str, ctx: dict[str, Any]) -> str:
    if reason == "test":
        return _TEST_BODY[lang]
    lines: list[str] = []
    for source in _BODY_LINES[lang]:
        if source == "{data}":
            data = (ctx.get("event") or {}).get("data") or {}
            lines.extend(f"  {k}: {' '.join(str(v).split())}" for k, v in data.items()
                         if v is not None and not isinstance(v, dict | list))
        elif line := " ".join(_render(source, ctx).split()):
            lines.append(line)
    return "\n".join(lines)


def render_message(*, lang: str, reason: str, summary: str, context: dict[str, Any]) -> dict[str, str]:
    """``{title, text, link, link_label}`` for one notification; ``text`` has one fact per line."""
    ctx = {**context, "summary": summary, "reason": reason}
    lang = lang if lang in LANGS else "en"
    return {
        "title": " ".join(_render(_TITLES[lang][reason], ctx).split()),
        "text": _body(lang, reason, ctx),
        "link": str(context.get("link") or ""),
        "link_label": _LINK_LABEL[lang],
        "lang": lang,
    }

