"""The booking page in a real browser: Debian's chromium driven by Playwright, by keyboard, at 360 and 1280 px.

The code comes from the real SMTP server (the outbox worker delivers it), the chat is the real PTB application
over the fake Bot API. Skipped, with the reason, where Playwright or chromium is missing; .ci/run installs both.
Set FRONTDESK_SCREENSHOTS=DIR to keep the screenshots there (the README's come from docs/).
"""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import build_handlers
from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from bot.settings import Settings
from bot.telegram import TelegramTransport, build_application, start_telegram, stop_telegram
from handlers.router import Desk
from handlers.setup import apply_setup, parse_setup
from tests.fakebotapi import fake_bot_api  # noqa: F401
from tests.helpers import ask, practice_setup
from tests.integration.test_courses import COURSE, EXAMPLE
from tests.pageclient import serve_page
from tests.smtp import free_port, smtp_server  # noqa: F401

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no chromium at {CHROMIUM} (apt-get install "
                                                                     "chromium)")

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
LEA = 2102


@pytest.fixture
async def practice(fake_bot_api, smtp_server, sqlite_store, config, clock):  # noqa: F811
    """The demo practice: the booking page, the Telegram application, and an outbox worker for mail and chat."""
    clock.current = MONDAY
    async with sqlite_store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    desk = Desk(sqlite_store, config, build_handlers(), clock)
    settings = Settings(_env_file=None, telegram_token="123:TEST", telegram_api_url=f"{fake_bot_api.url}/bot",
                        secret_key="x" * 32, telegram_rate_per_second=0, telegram_concurrency=4)
    app = build_application(settings, desk)
    await start_telegram(app, settings)
    worker = OutboxWorker(sqlite_store, {"email": SmtpTransport(smtp_server.url, "Physio <desk@physio.example>"),
                                         "telegram": TelegramTransport(app.bot)}, clock=clock)
    yield desk, worker
    await worker.close()
    await stop_telegram(app)


@pytest.fixture
async def browser():
    async with playwright.async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        await chromium.close()


def shots(tmp_path: Path) -> Path:
    """Where screenshots go: FRONTDESK_SCREENSHOTS if set (docs/ for the README), else the test's folder."""
    folder = Path(os.environ.get("FRONTDESK_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def press(page, role: str, name: str, navigates: bool = True) -> None:
    """Reach a link or button by keyboard focus and press Enter, as someone without a mouse does."""
    await page.get_by_role(role, name=name, exact=True).focus()
    await enter(page, navigates)


async def enter(page, navigates: bool = True) -> None:
    """Press Enter where the focus is, and wait for the page it leads to."""
    if not navigates:
        await page.keyboard.press("Enter")
        return
    async with page.expect_navigation():
        await page.keyboard.press("Enter")


async def fits(page, width: int) -> None:
    """Nothing sticks out sideways, and every link and button is a big enough target."""
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    small = await page.evaluate("""[...document.querySelectorAll('a.option, button')]
        .filter(e => e.getBoundingClientRect().height < 44).map(e => e.textContent)""")
    assert small == []


async def code_from(worker: OutboxWorker, smtp, address: str) -> str:
    await worker.drain()
    mail = [m for m in smtp.messages if m["To"] == address][-1]
    return mail["Subject"].split()[0]


async def test_a_booking_by_keyboard_in_chromium_then_the_chat_refuses_that_time(
        practice, browser, smtp_server, fake_bot_api, clock, tmp_path):  # noqa: F811
    desk, worker = practice
    server = await serve_page(desk)
    folder = shots(tmp_path)
    try:
        page = await browser.new_page(viewport={"width": 360, "height": 780}, locale="en-GB")
        await page.goto(f"http://127.0.0.1:{server.port}/book")
        assert await page.locator("h1").inner_text() == "Which service would you like?"
        await fits(page, 360)
        await page.screenshot(path=folder / "bookpage-services-360.png", full_page=True)
        await press(page, "link", "Massage 60 min · 65.00")
        await press(page, "link", "Linz")
        await press(page, "link", "Lukas Huber")
        await press(page, "link", "Tue 8 Dec")
        assert await page.locator("h1").inner_text() == "Which time suits you?"
        await fits(page, 360)
        await page.screenshot(path=folder / "bookpage-times-360.png", full_page=True)
        await press(page, "link", "10:00")
        name = page.get_by_label("Your name")
        assert await name.evaluate("e => e === document.activeElement")  # the form starts at its first field
        await page.keyboard.type("Kim Lee")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "email"
        await page.keyboard.type("kim@example.com")
        await page.keyboard.press("Tab")  # past the honeypot, which is out of the tab order
        assert await page.evaluate("document.activeElement.textContent") == "Hold this time and send the code"
        await fits(page, 360)
        await page.screenshot(path=folder / "bookpage-form-360.png", full_page=True)
        clock.advance(seconds=8)  # a person takes a while to type
        await enter(page)
        assert await page.locator("h1").inner_text() == "Enter your booking code"
        await fits(page, 360)
        await page.screenshot(path=folder / "bookpage-code-360.png", full_page=True)
        code = await code_from(worker, smtp_server, "kim@example.com")
        await page.get_by_label("Booking code (6 digits)").fill(code)
        await enter(page)
        assert await page.locator("h1").inner_text() == "Booked!"
        assert "calendar invitation is on its way to k…\u2060@example.com" in await page.inner_text("main")
        await page.screenshot(path=folder / "bookpage-booked-360.png", full_page=True)
        await page.close()
    finally:
        await server.close()
    [refused] = await ask(fake_bot_api, LEA, "/book Massage 2026-12-08 10:00 Lukas Huber")
    assert "was just taken" in refused.params["text"]
    await worker.drain()
    assert any(m["Subject"].startswith("Booked: Massage") for m in smtp_server.messages)


async def test_errors_are_announced_at_their_fields_and_the_wide_page_reads_well(practice, browser, clock, tmp_path):
    desk, _ = practice
    server = await serve_page(desk)
    folder = shots(tmp_path)
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="de-AT")
        url = f"http://127.0.0.1:{server.port}/book?service=Massage&location=Linz&staff=any&day=2026-12-08"
        await page.goto(url)
        assert await page.locator("h1").inner_text() == "Welche Uhrzeit passt Ihnen?"
        await fits(page, 1280)
        await page.screenshot(path=folder / "bookpage-1280.png", full_page=True)
        await press(page, "link", "10:00")
        await page.get_by_label("E-Mail-Adresse").fill("kim@")
        clock.advance(seconds=8)
        await press(page, "button", "Zeit reservieren und Code schicken")
        email = page.get_by_label("E-Mail-Adresse")
        assert await email.get_attribute("aria-invalid") == "true"
        described = (await email.get_attribute("aria-describedby")).split()
        texts = [await page.locator(f"#{each}").inner_text() for each in described]
        assert "Bitte geben Sie eine E-Mail-Adresse wie name@beispiel.de ein." in texts
        assert await page.get_by_role("alert").count() == 2  # name and address, each beside its field
        await page.close()
    finally:
        await server.close()


async def test_the_popup_opens_the_page_over_a_listed_homepage(practice, browser, tmp_path):
    desk, _ = practice
    port = free_port()
    homepage = f"http://127.0.0.1:{port}"
    server = await serve_page(desk, origins=homepage)
    desk_url = f"http://localhost:{server.port}"  # another origin than the homepage's
    site = web.Application()
    snippet = f'<script src="{desk_url}/widget.js" data-service="Massage" data-lang="en"></script>'

    async def home(request: web.Request) -> web.Response:
        return web.Response(text=f"<!doctype html><html lang='en'><body><h1>Physio am Park</h1>{snippet}</body></html>",
                            content_type="text/html")

    site.router.add_get("/", home)
    runner = web.AppRunner(site)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(homepage)
        await press(page, "button", "Book online", navigates=False)
        frame = page.frame_locator("dialog iframe")
        await frame.locator("h1").wait_for()
        assert await frame.locator("h1").inner_text() == "Where would you like to come?"
        assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == "Close"
        await page.screenshot(path=shots(tmp_path) / "bookpage-popup-1280.png")
        await page.keyboard.press("Escape")
        assert not await page.locator("dialog").evaluate("d => d.open")
        assert await page.evaluate("document.activeElement.textContent") == "Book online"
        await page.close()
    finally:
        await runner.cleanup()
        await server.close()


async def test_a_course_place_by_keyboard_in_chromium_with_the_mailed_code(
        fake_bot_api, smtp_server, sqlite_store, config, clock, browser, tmp_path):  # noqa: F811
    clock.current = MONDAY
    async with sqlite_store.uow() as uow:
        await apply_setup(uow, parse_setup(EXAMPLE.read_text() + COURSE, "practice.toml"), clock.now())
        await uow.commit()
    desk = Desk(sqlite_store, config, build_handlers(), clock)
    worker = OutboxWorker(sqlite_store, {"email": SmtpTransport(smtp_server.url, "Physio <desk@physio.example>")},
                          clock=clock)
    server = await serve_page(desk)
    try:
        page = await browser.new_page(viewport={"width": 360, "height": 780}, locale="en-GB")
        await page.goto(f"http://127.0.0.1:{server.port}/book?course=R%C3%BCckenfit")
        assert await page.locator("h1").inner_text() == "Rückenfit"
        assert "3 of 3 places free" in await page.inner_text("main")
        await fits(page, 360)
        await page.get_by_label("Your name").focus()
        await page.keyboard.type("Kim Lee")
        await page.keyboard.press("Tab")
        await page.keyboard.type("kim@example.com")
        await page.keyboard.press("Tab")  # past the honeypot
        assert await page.evaluate("document.activeElement.textContent") == "Hold a place and send the code"
        clock.advance(seconds=8)
        await enter(page)
        assert await page.locator("h1").inner_text() == "Enter your booking code"
        await page.get_by_label("Code (6 digits)").fill(await code_from(worker, smtp_server, "kim@example.com"))
        await enter(page)
        assert await page.locator("h1").inner_text() == "Place confirmed!"
        await fits(page, 360)
        await page.screenshot(path=shots(tmp_path) / "bookpage-course-360.png", full_page=True)
        await page.close()
        await worker.drain()
        assert any(m["Subject"].startswith("Your place: Rückenfit") for m in smtp_server.messages)
    finally:
        await server.close()
        await worker.close()
