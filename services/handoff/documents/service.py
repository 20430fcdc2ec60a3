"""Renders the handoff document (Markdown or HTML, English or Japanese) with sandboxed Jinja2."""

from __future__ import annotations

from typing import Literal

from jinja2 import DictLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from services.handoff.documents.templates import HTML, LABELS, MARKDOWN, VALUE_LABELS
from services.handoff.handoffs.schemas import HandoffOut

DocFormat = Literal["markdown", "html"]
Lang = Literal["en", "ja"]

_ENVS = {
    # HTML escapes every value; Markdown is plain text whose readers render it themselves.
    "html": SandboxedEnvironment(loader=DictLoader({"doc": HTML}), autoescape=True, undefined=StrictUndefined,
                                 trim_blocks=False, keep_trailing_newline=True),
    "markdown": SandboxedEnvironment(loader=DictLoader({"doc": MARKDOWN}), autoescape=False,
                                     undefined=StrictUndefined, keep_trailing_newline=True),
}
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "markdown": "text/markdown; charset=utf-8"}


_OFFERED: tuple[tuple[str, DocFormat], ...] = (("text/markdown", "markdown"), ("text/html", "html"))


def negotiate(accept: str | None) -> DocFormat | None:
    """The format an ``Accept`` header asks for (RFC 9110 q-values and wildcards): the offered type with the
    highest q, Markdown first on ties (no header, ``*/*``, ``text/*``); None when it accepts neither."""
    if accept is None or not accept.strip():
        return "markdown"
    quality: dict[DocFormat, tuple[int, float]] = {}  # format -> (specificity of the matching range, q)
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        media = media.lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0
        for offered, fmt in _OFFERED:
            specificity = 2 if media == offered else 1 if media == offered.split("/")[0] + "/*" else \
                0 if media == "*/*" else -1
            if specificity >= 0 and specificity >= quality.get(fmt, (-1, 0.0))[0]:
                quality[fmt] = (specificity, q)
    best: DocFormat | None = None
    best_q = 0.0
    for _, fmt in _OFFERED:
        q = quality.get(fmt, (-1, 0.0))[1]
        if q > best_q:
            best, best_q = fmt, q
    return best


def render(handoff: HandoffOut, fmt: DocFormat, lang: Lang) -> str:
    template = _ENVS[fmt].get_template("doc")
    return template.render(h=handoff.model_dump(mode="json"), L=LABELS[lang], V=VALUE_LABELS[lang], lang=lang)
