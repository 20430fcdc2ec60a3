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

_BODIES = {
    "en": (
        "{% if reason == 'test' %}This channel is configured correctly.{% else %}"
        "Account: {{ account.name or subject }} ({{ subject }})\n"
        "Rule: {{ rule }} · severity {{ severity }} · status {{ status }}\n"
        "{% if account.health_band %}Health: {{ account.health_band }}"
        "{% if account.health_score is not none %} ({{ account.health_score }}){% endif %}\n{% endif %}"
        "Event: {{ event.type }} at {{ event.time }} ({{ event_count }} so far)\n"
        "{% for k, v in event.data.items() %}{% if v is not mapping and v is not sequence or v is string %}"
        "  {{ k }}: {{ v }}\n{% endif %}{% endfor %}"
        "Open the account: {{ link }}{% endif %}"
    ),
    "ja": (
        "{% if reason == 'test' %}このチャネルは正しく設定されています。{% else %}"
        "アカウント: {{ account.name or subject }} ({{ subject }})\n"
        "ルール: {{ rule }} ・ 重要度 {{ severity }} ・ 状態 {{ status }}\n"
        "{% if account.health_band %}ヘルス: {{ account.health_band }}"
        "{% if account.health_score is not none %} ({{ account.health_score }}){% endif %}\n{% endif %}"
        "イベント: {{ event.type }} ({{ event.time }}、累計 {{ event_count }} 件)\n"
        "{% for k, v in event.data.items() %}{% if v is not mapping and v is not sequence or v is string %}"
        "  {{ k }}: {{ v }}\n{% endif %}{% endfor %}"
        "アカウントを開く: {{ link }}{% endif %}"
    ),
}
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


def render_message(*, lang: str, reason: str, summary: str, context: dict[str, Any]) -> dict[str, str]:
    """``{title, text, link, link_label}`` for one notification."""
    ctx = {**context, "summary": summary, "reason": reason}
    lang = lang if lang in LANGS else "en"
    return {
        "title": _render(_TITLES[lang][reason], ctx),
        "text": _render(_BODIES[lang], ctx),
        "link": str(context.get("link") or ""),
        "link_label": _LINK_LABEL[lang],
        "lang": lang,
    }

