"""The homepage edge: a read-only GraphQL API and a health check over HTTP (aiohttp)."""
from __future__ import annotations

from bot.api.server import ApiServer, accepted_language, build_app
from bot.settings import Settings, SettingsError, parse_listen
from handlers.context import Clock
from storage.db import Store

__all__ = ["ApiServer", "accepted_language", "build_app", "start_api"]


async def start_api(settings: Settings, store: Store, clock: Clock) -> ApiServer:
    """Listen on FRONTDESK_API_LISTEN; an address we cannot listen on fails at start, naming the variable."""
    host, port = parse_listen(settings.api_listen, "FRONTDESK_API_LISTEN")
    app = build_app(store, clock, settings.api_origin_list, settings.language)
    try:
        return await ApiServer(app, host, port).start()
    except OSError as exc:  # the address is not ours, the port is taken, the name unknown
        raise SettingsError(f"FRONTDESK_API_LISTEN {settings.api_listen!r}: cannot listen there "
                            f"({exc.strerror or exc})") from exc
