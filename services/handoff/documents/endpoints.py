"""The handoff document route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.handoff.dependencies import ReadScope, SettingsDep, ValidHandoff
from services.handoff.documents.service import MEDIA_TYPES, DocFormat, Lang, render
from services.handoff.handoffs import service as handoffs
from shared.app import SessionDep
from shared.errors import problems

router = APIRouter(prefix="/v1/handoffs", tags=["documents"])

_EXAMPLE_MD = "# Handoff: Acme Corp\n\n- **Status:** Accepted\n- **Completeness:** 100%\n..."
_EXAMPLE_HTML = "<!DOCTYPE html>\n<html lang=\"en\">...<h1>Handoff: Acme Corp</h1>...</html>"


@router.get(
    "/{handoff_id}/document", response_class=Response,
    responses={**problems(404), 200: {"description": "The handoff document", "content": {
        "text/markdown": {"example": _EXAMPLE_MD}, "text/html": {"example": _EXAMPLE_HTML}}}},
)
async def get_document(handoff: ValidHandoff, session: SessionDep, settings: SettingsDep, _: ReadScope,
                       format: Annotated[DocFormat, Query(description="markdown or html")] = "markdown",
                       lang: Annotated[Lang, Query(description="Labels in English (en) or Japanese (ja).")] = "en",
                       ) -> Response:
    """The handoff document the post-sales owner reads before the kickoff."""
    out = await handoffs.read(session, handoff, settings.completeness_checklist)
    return Response(render(out, format, lang), media_type=MEDIA_TYPES[format],
                    headers={"Content-Language": lang})
