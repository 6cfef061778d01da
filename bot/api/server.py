"""The homepage's HTTP edge (aiohttp): POST /graphql (read-only GraphQL), GET /healthz, CORS for listed origins.

A request body over MAX_BODY bytes is refused with 413 before it is parsed; queries are held to a depth, an
alias and a token limit (bot.api.schema); GET /graphql is refused, so a query never sits in a URL or a log.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from strawberry.aiohttp.views import GraphQLView

from bot.api.schema import ApiContext, build_schema
from bot.listening import STORE, Listener, database_answers
from handlers.context import Clock
from storage.db import Store

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # bytes; a homepage's queries are a few hundred
PREFLIGHT_MAX_AGE = "600"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def accepted_language(header: str) -> str | None:
    """The first of de and en that an Accept-Language header names (by weight, then order), or None."""
    ranked = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].lower()
        if primary in ("de", "en") and weight > 0:
            ranked.append((-weight, position, primary))
    return min(ranked)[2] if ranked else None


class HomepageView(GraphQLView[ApiContext, None]):
    """Strawberry's aiohttp view with one ApiContext per request; no IDE page, no queries by GET."""

    def __init__(self, store: Store, clock: Clock, default_language: str):
        super().__init__(build_schema(), graphql_ide=None, allow_queries_via_get=False)
        self.store, self.clock, self.default_language = store, clock, default_language

    async def get_context(self, request: web.Request, response: web.Response | web.WebSocketResponse) -> ApiContext:
        return ApiContext(self.store, self.clock, accepted_language(request.headers.get("Accept-Language", "")),
                          self.default_language)


def cors(origins: Iterable[str]) -> Callable:
    """Answer preflights for POST /graphql from the listed origins, and echo only a listed Origin back."""
    allowed = frozenset(origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        listed = origin.lower() in allowed
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return preflight(request, origin if listed else None)
        try:
            response = await handler(request)
        except web.HTTPException as refused:  # 404, 405, 413: a listed page may read the status too
            response = web.Response(status=refused.status, reason=refused.reason, text=refused.text,
                                    headers={k: v for k, v in refused.headers.items() if k.lower() == "allow"})
        response.headers.add("Vary", "Origin")
        if listed:
            response.headers["Access-Control-Allow-Origin"] = origin
        return response

    return middleware


def preflight(request: web.Request, origin: str | None) -> web.Response:
    """204 with the CORS grant for a listed origin asking to POST to /graphql; 403 without it otherwise."""
    method = request.headers.get("Access-Control-Request-Method", "").upper()
    if origin is None or request.path != "/graphql" or method != "POST":
        return web.Response(status=403, headers={"Vary": "Origin"})
    return web.Response(status=204, headers={
        "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type, Accept-Language", "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        "Vary": "Origin"})


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers SELECT 1 within HEALTH_TIMEOUT, else 503."""
    if await database_answers(request.app[STORE]):
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unavailable"}, status=503)


def build_app(store: Store, clock: Clock, origins: Iterable[str], default_language: str) -> web.Application:
    """The homepage's routes; another homepage edge (a booking page) adds its own to the same app."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[cors(origins)])
    app[STORE] = store
    app.router.add_post("/graphql", HomepageView(store, clock, default_language))
    app.router.add_get("/healthz", healthz)
    return app


class ApiServer(Listener):
    """The homepage app listening on HOST:PORT until closed (port 0: any free port, see `port`)."""

    def __init__(self, app: web.Application, host: str, port: int):
        super().__init__(app, "homepage API")
        self.host, self.requested_port = host, port

    async def start(self) -> ApiServer:
        await self.listen(self.host, self.requested_port)
        return self
