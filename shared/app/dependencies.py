"""The request-scoped dependencies every service uses: the context, the session, the settings.

``SettingsDep`` is generic: a service binds it to its own settings class once, in its
``dependencies.py`` (``SettingsDep = shared.app.SettingsDep[Settings]``), and endpoints get typed
settings with no cast; the factory guarantees the instance is of that class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.app.context import ServiceContext
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def get_ctx(request: Request) -> ServiceContext[Any, Any]:
    ctx: ServiceContext[Any, Any] = request.app.state.ctx
    return ctx


def get_settings(request: Request) -> Any:
    """The app's settings (an instance of the service's own settings class)."""
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: commits when the endpoint succeeds, rolls back when it raises."""
    ctx = get_ctx(request)
    async with ctx.session_factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        if session.info.get("outbox_dirty"):
            ctx.publish_soon()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ContextDep = Annotated[ServiceContext, Depends(get_ctx)]
SettingsDep = Annotated[S, Depends(get_settings)]
