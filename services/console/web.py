"""What every page shares: the session, the signed-in principal, CSRF, language, rendering, security headers."""

from __future__ import annotations

import datetime as dt
import hmac
import time
import urllib.parse
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.i18n import pick_language, translator
from services.console.session import Session, SessionBox
from services.console.settings import Settings
from services.console.upstream import Api, Upstream
from shared.auth import KeyStore, Principal

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "ps_console"
SECURE_COOKIE = "__Host-ps_console"  # __Host-: Secure, path /, no Domain: not settable by a sibling host
LANG_COOKIE = "ps_lang"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-src 'self'; "
       "frame-ancestors 'none'")


class NeedSignIn(Exception):
    """The page needs a signed-in person."""


class CsrfFailed(Exception):
    """A form came without the session's CSRF token."""


def _money(value: Any, currency: str | None = None) -> str:
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = f"{amount:,.0f}"
    return f"{text} {currency}" if currency else text


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.0f}%"


def _day(value: Any) -> str:
    if not value:
        return "—"
    return str(value)[:10]


def _when(value: Any) -> str:
    if not value:
        return "—"
    text = str(value)
    return text[:16].replace("T", " ")


def _num(value: Any) -> str:
    if value is None:
        return "—"
    f = float(value)
    return f"{f:.0f}" if f == int(f) else f"{f:.1f}"


env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(money=_money, pct=_pct, day=_day, when=_when, num=_num)


@dataclass
class Page:
    """One request's view of the console: session, principal, language, the upstream with the token."""

    request: Request
    settings: Settings
    box: SessionBox
    session: Session
    principal: Principal | None
    lang: str
    api: Api
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())

    def t(self, text: str) -> str:
        return translator(self.lang).get(text, text)

    def can(self, scope: str) -> bool:
        return self.principal is not None and self.principal.has(scope)

    @property
    def secure(self) -> bool:
        if self.settings.cookie_secure is not None:
            return self.settings.cookie_secure
        proto = self.request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return self.request.url.scheme == "https" or proto == "https"

    def _finish(self, response: Response) -> Response:
        name = SECURE_COOKIE if self.secure else COOKIE
        response.set_cookie(name, self.box.seal(self.session), httponly=True, secure=self.secure, samesite="lax",
                            path="/", max_age=self.settings.session_ttl_minutes * 60)
        response.headers["Cache-Control"] = "no-store"
        return response

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        flash, self.session.flash = self.session.flash, []
        html = env.get_template(template).render(
            _=self.t, page=self, lang=self.lang, csrf=self.session.csrf, principal=self.principal,
            down=sorted(self.api.down), denied=self.api.denied, flash=flash, path=self.request.url.path,
            today=self.today, **context)
        return self._finish(HTMLResponse(html, status_code=status_code))

    def redirect(self, url: str) -> Response:
        return self._finish(RedirectResponse(local(url), status_code=303))


def local(url: str | None, default: str = "/") -> str:
    """``url`` if it is a path on this site; else ``default`` (no open redirects)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    parts = urllib.parse.urlsplit(url)
    if parts.scheme or parts.netloc:
        return default
    return url


def _cookie_session(request: Request, box: SessionBox) -> Session:
    for name in (SECURE_COOKIE, COOKIE):
        s = box.open(request.cookies.get(name))
        if s is not None:
            return s
    return Session()


async def visitor(request: Request) -> Page:
    settings: Settings = request.app.state.settings
    box: SessionBox = request.app.state.box
    keystore: KeyStore = request.app.state.keystore
    upstream: Upstream = request.app.state.upstream
    session = _cookie_session(request, box)
    principal: Principal | None = None
    if session.token is not None:
        # Re-checked on every request: a key removed from POSTSALES_API_KEYS ends its sessions at once.
        principal = keystore.authenticate(session.token) if session.expires > time.time() else None
        if principal is None:
            session = Session(flash=[("info", "Your session ended. Please sign in again.")])
    lang = pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    page = Page(request, settings, box, session, principal, lang, Api(upstream, session.token))
    request.state.page = page
    return page


async def member(page: Annotated[Page, Depends(visitor)]) -> Page:
    if page.principal is None:
        raise NeedSignIn
    return page


async def read_form(request: Request) -> dict[str, str]:
    """The url-encoded form (first value of each field); bodies are bounded by the request middleware."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}


async def checked_form(request: Request, page: Annotated[Page, Depends(visitor)]) -> dict[str, str]:
    """The form, once its CSRF token matches the session's; else 403."""
    form = await read_form(request)
    sent = form.get("csrf", "")
    if not sent or not hmac.compare_digest(sent.encode(), page.session.csrf.encode()):
        raise CsrfFailed
    return form


VisitorDep = Annotated[Page, Depends(visitor)]
MemberDep = Annotated[Page, Depends(member)]
FormDep = Annotated[dict[str, str], Depends(checked_form)]


class SecurityHeaders:
    """A strict CSP and the usual headers on every response (a route may set a stricter CSP itself)."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"same-origin",
                    b"cross-origin-opener-policy": b"same-origin",
                    b"cross-origin-resource-policy": b"same-origin",
                    b"permissions-policy": b"camera=(), microphone=(), geolocation=(), payment=()",
                }
                if self.hsts:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)
