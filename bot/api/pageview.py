"""Rendering the booking page: its language and look per request, links that keep them, the security headers,
and the summary of what was chosen. The words are the templates' (templates/page/ holds only markup)."""
from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from babel.numbers import format_decimal
from markupsafe import Markup

from bot.api.server import accepted_language
from handlers.booking.form import ANY, BookingQuery
from handlers.homepage import Look, load_look
from handlers.homepage.booking import Option, Visitor
from handlers.homepage.guard import accent, client_address, params_of, text_on
from handlers.router import Desk
from templates import page, word

DEFAULT_ACCENT = "#2e86de"
SYSTEM_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
KEPT = ("lang", "accent")  # parameters every link and form of the page passes on


@dataclass(frozen=True)
class PageConfig:
    desk: Desk
    frame_ancestors: str  # the CSP source list of who may frame the page
    proxies: frozenset[str] = frozenset()


PAGE_CONFIG = web.AppKey("booking_page", PageConfig)


def frame_ancestors(origins: Iterable[str]) -> str:
    """The homepages that may frame the page: FRONTDESK_API_ORIGINS, or none but the desk itself."""
    return " ".join(origins) or "'self'"


@dataclass
class Shown:
    """One request's page: its language, look, the parameters its links keep, and the nonce of its style."""

    lang: str
    look: Look
    accent: str
    keep: dict[str, str]
    client: str
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def visitor(self) -> Visitor:
        return Visitor(self.lang, self.client)

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """A link on the page to `path`, keeping the page's language and colour."""
        query = urlencode({**(params or {}), **self.keep})
        return f"{path}?{query}" if query else path

    def walk(self, query: BookingQuery | None) -> str:
        return self.url("/book", params_of(query) if query else {})

    def t(self, key: str, **values: Any) -> str:
        return word(self.lang, f"bookpage.{key}", **values)


async def shown(request: web.Request) -> Shown:
    """The page's language (?lang, else Accept-Language, else the business's) and look (?accent for a quick test)."""
    config = request.app[PAGE_CONFIG]
    async with config.desk.store.uow() as uow:
        look = await load_look(uow, config.desk.config.default_timezone)
    asked = request.query.get("lang", "")
    lang = asked if asked in ("de", "en") else (
        accepted_language(request.headers.get("Accept-Language", "")) or look.language
        or config.desk.config.default_language)
    tried = accent(request.query.get("accent"))
    keep = {"lang": asked} if asked in ("de", "en") else {}
    if tried:
        keep["accent"] = tried
    client = client_address(request.remote, request.headers.get("X-Forwarded-For", ""), config.proxies)
    return Shown(lang, look, tried or look.accent or DEFAULT_ACCENT, keep, client)


def headers(request: web.Request, view: Shown) -> dict[str, str]:
    """Who may frame the page, what it may load (its own stylesheet and its one style element), no caching."""
    policy = (f"default-src 'none'; style-src 'self' 'nonce-{view.nonce}'; img-src 'self' data:; form-action 'self'; "
              f"base-uri 'none'; frame-ancestors {request.app[PAGE_CONFIG].frame_ancestors}")
    return {"Content-Security-Policy": policy, "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store"}


def render(request: web.Request, view: Shown, name: str, status: int = 200, **values: Any) -> web.Response:
    """The page `name` (a view of book.html.j2) in the request's language and look."""
    look = view.look
    values = {"options": [], "chosen": [], "again": None, "alert": None, "errors": {}, "ended_text": None, **values}
    other = {**view.keep, "lang": view.t("other_lang")}
    html = page("book.html.j2", view.lang, view=name, look=look, tz=look.timezone, nonce=view.nonce,
                accent=Markup(view.accent), on_accent=Markup(text_on(view.accent)),
                font=Markup(look.font or SYSTEM_FONT), css=Markup(look.css or ""), shown=view,
                other_language=f"{request.path}?{urlencode({**request.query, **other})}", **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers=headers(request, view))


@dataclass(frozen=True)
class Chosen:
    """One line of "your choice so far": what, the value, and the link that changes it."""

    what: str
    value: str
    href: str


def summary(view: Shown, query: BookingQuery | None) -> list[Chosen]:
    """What the visitor chose, each with a link back to choosing it anew (the later choices dropped)."""
    if query is None or query.service is None:
        return []
    found = [Chosen(view.t("step_service"), query.service, view.walk(None))]
    steps = [("step_location", query.location, BookingQuery(query.service)),
             ("step_staff", view.t("anyone") if query.staff == ANY else query.staff,
              BookingQuery(query.service, query.location)),
             ("step_day", query.day and format_day(view.lang, query), BookingQuery(query.service, query.location,
                                                                               query.staff))]
    for key, value, before in steps:
        if value:
            found.append(Chosen(view.t(key), str(value), view.walk(before)))
    return found


def format_day(lang: str, query: BookingQuery) -> str:
    return word(lang, "booking_label.day", day=query.day)


def price(lang: str, value: str | None) -> str | None:
    """Decimal text in the reader's way of writing numbers: 65.00 or 65,00."""
    if value is None:
        return None
    try:
        return format_decimal(Decimal(value), format="#,##0.00", locale=lang)
    except InvalidOperation:
        return value


def links(view: Shown, found: Iterable[Option]) -> list[dict[str, Any]]:
    """Options as the page lists them: label, link, and for a service its length and price."""
    return [{"label": o.label, "href": view.walk(o.query),
             "detail": view.t("minutes", minutes=o.minutes) + (f" · {price(view.lang, o.price)}" if o.price else "")
             if o.minutes else None} for o in found]


def widget(request: web.Request, view: Shown) -> web.Response:
    """The popup button's script, with the words of both languages and the business's colour."""
    script = page("widget.js.j2", view.lang, accent=view.accent,
                  labels={lang: {key: word(lang, f"bookpage.{key}") for key in ("open", "close", "dialog")}
                          for lang in ("de", "en")})
    return web.Response(text=script, content_type="application/javascript", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
