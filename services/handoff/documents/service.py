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


def render(handoff: HandoffOut, fmt: DocFormat, lang: Lang) -> str:
    template = _ENVS[fmt].get_template("doc")
    return template.render(h=handoff.model_dump(mode="json"), L=LABELS[lang], V=VALUE_LABELS[lang], lang=lang)
