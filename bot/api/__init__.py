"""The homepage edge over HTTP (aiohttp): a read-only GraphQL API, the booking page and its popup script, and a
health check."""
from __future__ import annotations

from bot.api.page import add_booking_page
from bot.api.server import ApiServer, accepted_language, build_app
from bot.settings import Settings, SettingsError, parse_listen
from handlers.router import Desk

__all__ = ["ApiServer", "accepted_language", "add_booking_page", "build_app", "homepage_app", "start_api"]


def homepage_app(settings: Settings, desk: Desk):
    """The API and the booking page on one aiohttp app: FRONTDESK_API_ORIGINS may call the API (CORS) and frame
    the page; FRONTDESK_API_PROXIES name the proxies whose X-Forwarded-For says who is at the page."""
    app = build_app(desk.store, desk.clock, settings.api_origin_list, settings.language)
    add_booking_page(app, desk, settings.api_origin_list, settings.api_proxy_set)
    return app


async def start_api(settings: Settings, desk: Desk) -> ApiServer:
    """Listen on FRONTDESK_API_LISTEN; an address we cannot listen on fails at start, naming the variable."""
    host, port = parse_listen(settings.api_listen, "FRONTDESK_API_LISTEN")
    try:
        return await ApiServer(homepage_app(settings, desk), host, port).start()
    except OSError as exc:  # the address is not ours, the port is taken, the name unknown
        raise SettingsError(f"FRONTDESK_API_LISTEN {settings.api_listen!r}: cannot listen there "
                            f"({exc.strerror or exc})") from exc
