"""A plain HTTP client for the booking page: it follows links and fills in forms as a person would, without a
browser (tests/e2e/test_bookpage_browser.py drives a real one)."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

from bot.api import ApiServer, homepage_app
from bot.settings import Settings
from handlers.router import Desk

HIDDEN = re.compile(r'<input type="hidden" name="([a-z]+)" value="([^"]*)">')
ALERT = re.compile(r'role="alert"[^>]*>(?:<p>)?(.*?)</p>', re.S)
LABELS = re.compile(r'class="label">([^<]*)<')
HOMEPAGE = "https://www.physio-am-park.example"


async def serve_page(desk: Desk, origins: str = HOMEPAGE) -> ApiServer:
    """The homepage server with the booking page, trusting 127.0.0.1 as a proxy (so tests name the client)."""
    settings = Settings(_env_file=None, secret_key="x" * 32, api_origins=origins, api_proxies="127.0.0.1")
    return await ApiServer(homepage_app(settings, desk), "127.0.0.1", 0).start()


@dataclass
class Answer:
    status: int
    text: str
    location: str | None = None

    @property
    def alerts(self) -> list[str]:
        """What the page announces (role=alert), as a person reads it."""
        return [html.unescape(" ".join(found.split())) for found in ALERT.findall(self.text)]

    @property
    def labels(self) -> list[str]:
        return [html.unescape(found) for found in LABELS.findall(self.text)]

    @property
    def hidden(self) -> dict[str, str]:
        return {name: html.unescape(value) for name, value in HIDDEN.findall(self.text)}

    def link(self, label: str) -> str:
        """The address of the option labelled `label`."""
        match = re.search(r'<a class="option" href="([^"]*)"><span class="label">' + re.escape(label) + "<", self.text)
        assert match, f"no option {label!r} in {self.labels}"
        return html.unescape(match[1])


class PageVisitor:
    """One visitor at the page, from one client address (sent as X-Forwarded-For through the trusted proxy)."""

    def __init__(self, url: str, clock, client: str = "203.0.113.7", lang: str = "en"):
        self.url, self.clock, self.client, self.lang = url, clock, client, lang

    async def get(self, path: str, **params: str) -> Answer:
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        return await self._send("GET", path)

    async def post(self, path: str, form: dict[str, str]) -> Answer:
        return await self._send("POST", path, form)

    async def _send(self, method: str, path: str, form: dict[str, str] | None = None) -> Answer:
        headers = {"X-Forwarded-For": self.client, "Accept-Language": self.lang}
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.url + path, data=form, headers=headers,
                                       allow_redirects=False) as response:
                return Answer(response.status, await response.text(), response.headers.get("Location"))

    async def form(self, **choice: str) -> Answer:
        """The form for name and email of a chosen time (service, location, staff, day, time)."""
        page = await self.get("/book", **choice)
        assert page.status == 200 and 'name="started"' in page.text, page.alerts or page.text[-2000:]
        return page

    async def hold(self, name: str, email: str, wait: float = 5, website: str = "", **choice: str) -> Answer:
        """Fill in the form of a chosen time like a person (taking `wait` seconds) and send it."""
        form = (await self.form(**choice)).hidden
        self.clock.advance(seconds=wait)
        return await self.post("/book/hold", {**form, "name": name, "email": email, "website": website})

    async def enter(self, code_page: str, code: str) -> Answer:
        """Send a code as the code page at `code_page` (a hold's address) does."""
        token = parse_qs(urlsplit(code_page).query)["hold"][0]
        return await self.post("/book/code", {"hold": token, "code": code})
