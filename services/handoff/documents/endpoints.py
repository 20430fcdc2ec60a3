"""The handoff document route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from services.handoff.dependencies import ReadScope, SettingsDep, ValidHandoff
from services.handoff.documents.service import MEDIA_TYPES, DocFormat, Lang, negotiate, render
from services.handoff.handoffs import service as handoffs
from shared.app import SessionDep
from shared.errors import NotAcceptable, problems

router = APIRouter(prefix="/v1/handoffs", tags=["documents"])

_EXAMPLE_MD = "# Handoff: Acme Corp\n\n- **Status:** Accepted\n- **Completeness:** 100%\n..."
_EXAMPLE_HTML = "<!DOCTYPE html>\n<html lang=\"en\">...<h1>Handoff: Acme Corp</h1>...</html>"


@router.get(
    "/{handoff_id}/document", response_class=Response,
    responses={**problems(404, 406), 200: {"description": "The handoff document", "content": {
        "text/markdown": {"example": _EXAMPLE_MD}, "text/html": {"example": _EXAMPLE_HTML}}}},
)
async def get_document(handoff: ValidHandoff, session: SessionDep, settings: SettingsDep, _: ReadScope,
                       format: Annotated[DocFormat | None, Query(description=(
                           "markdown or html; when omitted, the `Accept` header decides (text/markdown, "
                           "text/html; Markdown for */* or no header; 406 for anything else)"))] = None,
                       lang: Annotated[Lang, Query(description="Labels in English (en) or Japanese (ja).")] = "en",
                       accept: Annotated[str | None, Header(include_in_schema=False)] = None,
                       ) -> Response:
    """The handoff document the post-sales owner reads before the kickoff (Markdown or HTML)."""
    fmt = format or negotiate(accept)
    if fmt is None:
        raise NotAcceptable(f"the document is served as text/markdown or text/html, not {accept!r}; "
                            "send one of them in Accept, or ?format=markdown|html")
    out = await handoffs.read(session, handoff, settings.completeness_checklist)
    headers: dict[str, str] = {"Content-Language": lang}
    if format is None:
        headers["Vary"] = "Accept"
    return Response(render(out, fmt, lang), media_type=MEDIA_TYPES[fmt], headers=headers)
