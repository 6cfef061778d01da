"""The booking page over real HTTP with a plain client: the walk, the hold, the code, and every bad path
(form robots, too many holds, wrong codes, late codes, unknown names, holidays), on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime, timezone

import aiohttp
import pytest
from sqlalchemy import update

from bot.app import build_handlers
from handlers.router import Desk
from handlers.setup import apply_setup
from storage.models import Address, Appointment, Business, HoldSeat, Outbox
from tests.e2e.test_homepage_api import free_port, wait_healthy
from tests.helpers import PRACTICE, Chat, code_for, count, mails_to, practice_setup, rows
from tests.pageclient import HOMEPAGE, PageVisitor, serve_page

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
TUESDAY = "2026-12-08"  # Lukas in Linz 08–12, 13–18; Anna in Wels 09–17
LUKAS_CHAT = "telegram:1002"
TEN = {"service": "Massage", "location": "Linz", "staff": "Lukas Huber", "day": TUESDAY, "time": "10:00"}


async def open_desk(store, config, clock, holidays: bool = False) -> Desk:
    clock.current = MONDAY
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(holidays), clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    return await open_desk(store, config, clock)


@pytest.fixture
async def page(desk):
    server = await serve_page(desk)
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


def at(minute: str, **more: str) -> dict[str, str]:
    return {**TEN, "time": minute, **more}


async def held_until_code(visitor: PageVisitor, store, email: str, **choice: str) -> str:
    """Hold a time through the page; the code page's address."""
    sent = await visitor.hold("Kim Lee", email, **choice)
    assert sent.status == 303 and sent.location.startswith("/book/code?hold="), (sent.status, sent.alerts)
    return sent.location


# ---- the walk and a booking ----------------------------------------------------------------------


async def test_the_walk_asks_what_the_chat_asks_and_leads_to_the_form(page, clock):
    kim = PageVisitor(page, clock)
    services = await kim.get("/book")
    assert "Which service would you like?" in services.text and services.labels == [
        "Massage", "Heilgymnastik", "Erstberatung"]
    assert "60 min · 65.00" in services.text
    where = await kim.get(services.link("Massage"))
    assert where.labels == ["Linz", "Wels"]
    whom = await kim.get(where.link("Linz"))
    assert whom.labels == ["Any free", "Anna Berger", "Lukas Huber"]
    days = await kim.get(whom.link("Lukas Huber"))
    assert days.labels[:3] == ["Tue 8 Dec", "Thu 10 Dec", "Fri 11 Dec"]  # Lukas works Tue, Thu, Fri in Linz
    times = await kim.get(days.link("Tue 8 Dec"))
    assert {"08:00", "10:00", "17:00"} <= set(times.labels) and "12:00" not in times.labels
    form = await kim.get(times.link("10:00"))
    assert form.hidden == {**TEN, "started": form.hidden["started"]}
    assert "Massage on Tuesday, December 8, 2026 at 10:00–11:00" in form.text
    assert '<label for="name">Your name</label>' in form.text
    assert '<label for="email">Email address</label>' in form.text


async def test_a_visitor_books_with_the_mailed_code_and_the_chat_then_refuses_that_time(page, desk, store, clock):
    kim = PageVisitor(page, clock)
    code_page = await held_until_code(kim, store, "Kim@Example.com", **TEN)
    [held] = await rows(store, Appointment)
    assert (held.status, held.channel, held.created_by) == ("held", "web", "email:kim@example.com")
    [mail] = await mails_to(store, "kim@example.com")
    assert "Enter the code on the booking page" in mail.text
    waiting = await kim.get(code_page)
    assert "We sent a 6-digit code to k…\u2060@example.com." in waiting.text and "until 08:10" in waiting.text
    done = await kim.enter(code_page, await code_for(store, "kim@example.com"))
    assert done.status == 303 and done.location == code_page
    booked = await kim.get(code_page)
    assert "Booked!" in booked.text and "is on its way to k…\u2060@example.com" in booked.text
    [held] = await rows(store, Appointment)
    assert held.status == "confirmed"
    [address] = await rows(store, Address, Address.address == "email:kim@example.com")
    assert address.verified  # the code came back: the address is proven
    confirmation = (await mails_to(store, "kim@example.com"))[-1]
    assert confirmation.subject.startswith("Booked: Massage") and confirmation.attachments
    [note] = await mails_to(store, LUKAS_CHAT)
    assert "Neue Online-Buchung" in note.text and "Kim Lee" in note.text
    lea = Chat(desk, clock, "telegram:6")
    [taken] = await lea.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    assert "was just taken" in taken.text
    assert await count(store, HoldSeat) == 2  # the ended hold's seats are freed when seats are next taken


async def test_request_mode_files_a_request_that_keeps_the_time(page, store, clock):
    async with store.uow() as uow:
        await uow.session.execute(update(Business).values(booking_mode="request"))
        await uow.commit()
    kim = PageVisitor(page, clock)
    code_page = await held_until_code(kim, store, "kim@example.com", **TEN)
    assert "Send the request" in (await kim.get(code_page)).text
    await kim.enter(code_page, await code_for(store, "kim@example.com"))
    assert "your request is with us" in (await kim.get(code_page)).text
    [held] = await rows(store, Appointment)
    assert held.status == "requested"
    [note] = await mails_to(store, LUKAS_CHAT)
    assert "wartet auf Freigabe" in note.text


# ---- form robots -----------------------------------------------------------------------------------


async def test_a_filled_honeypot_is_refused_and_nothing_is_held(page, store, clock):
    robot = await PageVisitor(page, clock).hold("Bot", "bot@example.com", website="http://spam.example", **TEN)
    assert robot.status == 400 and robot.alerts == ["This form could not be sent. Please reload the page and "
                                                    "try again."]
    assert await count(store, Appointment) == 0 and await count(store, Outbox) == 0


async def test_a_form_sent_too_fast_or_unsigned_is_refused(page, store, clock):
    kim = PageVisitor(page, clock)
    quick = await kim.hold("Kim Lee", "kim@example.com", wait=1, **TEN)
    assert quick.status == 400 and quick.alerts == [
        "That was very quick. Please check your details and send the form again."]
    assert quick.hidden["started"] and 'value="Kim Lee"' in quick.text  # the form again, as filled in
    form = (await kim.form(**TEN)).hidden
    clock.advance(seconds=10)
    forged = await kim.post("/book/hold", {**form, "started": "1.0000000000000000", "name": "Kim", "email": "k@x.io"})
    assert forged.status == 400 and "could not be sent" in forged.alerts[0]
    assert await count(store, Appointment) == 0 and await count(store, Outbox) == 0
    later = await kim.post("/book/hold", {**quick.hidden, "name": "Kim Lee", "email": "kim@example.com"})
    assert later.status == 303  # the same form, sent again after a while: a person


async def test_missing_name_and_bad_address_are_told_at_their_fields(page, store, clock):
    sent = await PageVisitor(page, clock).hold("", "kim@", **TEN)
    assert sent.status == 422
    assert 'aria-invalid="true" aria-describedby="name-error"' in sent.text
    assert 'aria-describedby="email-hint email-error" aria-invalid="true"' in sent.text
    assert sent.alerts == ["Please enter your name.", "Please enter an email address like name@example.com."]
    assert await count(store, Appointment) == 0


# ---- holds and codes -------------------------------------------------------------------------------


async def test_a_third_open_hold_for_one_address_is_refused(page, store, clock):
    kim = PageVisitor(page, clock)
    await held_until_code(kim, store, "kim@example.com", **at("08:00"))
    second = await held_until_code(PageVisitor(page, clock, client="203.0.113.8"), store, "kim@example.com",
                                   **at("09:00"))
    third = await PageVisitor(page, clock, client="203.0.113.9").hold("Kim", "kim@example.com", **at("11:00"))
    assert third.status == 409 and third.alerts[0].startswith(
        "2 times are already on hold for this email address. Please confirm them")
    assert await count(store, Appointment) == 2  # the third hold was rolled back with its refusal
    await kim.enter(second, await code_for(store, "kim@example.com"))  # once one is confirmed, a seat is free
    again = await PageVisitor(page, clock, client="203.0.113.9").hold("Kim", "kim@example.com", **at("11:00"))
    assert again.status == 303


async def test_a_third_open_hold_from_one_client_is_refused(page, store, clock):
    office = PageVisitor(page, clock, client="198.51.100.20")
    await held_until_code(office, store, "a@example.com", **at("08:00"))
    await held_until_code(office, store, "b@example.com", **at("09:00"))
    third = await office.hold("Cem", "c@example.com", **at("11:00"))
    assert third.status == 409 and third.alerts[0].startswith("2 times are already on hold from this connection.")
    clock.advance(seconds=601)  # both holds ran out: their seats are free again
    assert (await office.hold("Cem", "c@example.com", **at("11:00"))).status == 303


async def test_five_wrong_codes_release_the_time(page, store, clock):
    kim = PageVisitor(page, clock)
    code_page = await held_until_code(kim, store, "kim@example.com", **TEN)
    right = await code_for(store, "kim@example.com")
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        miss = await kim.enter(code_page, wrong)
        tries = "try" if left == 1 else "tries"
        assert miss.status == 422 and miss.alerts == [f"That code is not right. {left} {tries} left."]
        assert 'aria-describedby="code-hint code-error" aria-invalid="true"' in miss.text
    last = await kim.enter(code_page, wrong)
    assert "That was the fifth wrong code" in last.alerts[0] and "This hold has ended" in last.text
    [held] = await rows(store, Appointment)
    assert held.status == "expired" and held.closed_reason == "too many wrong codes"
    late = await kim.enter(code_page, right)
    assert "This hold has ended" in late.text and (await rows(store, Appointment))[0].status == "expired"
    assert "10:00" in (await kim.get("/book", **{**TEN, "time": ""})).labels  # the time is free again


async def test_a_malformed_code_is_told_at_its_field_and_counts_nothing(page, store, clock):
    kim = PageVisitor(page, clock)
    code_page = await held_until_code(kim, store, "kim@example.com", **TEN)
    typed = await kim.enter(code_page, "12 34")
    assert typed.status == 422 and typed.alerts == ["Please enter the 6 digits from the mail."]
    full_width = "".join(chr(0xFF10 + int(d)) for d in await code_for(store, "kim@example.com"))
    assert (await kim.enter(code_page, full_width)).status == 303  # the chat's reading of digits


async def test_a_code_after_the_hold_ran_out_offers_fresh_times(page, store, clock):
    kim = PageVisitor(page, clock)
    code_page = await held_until_code(kim, store, "kim@example.com", **TEN)
    clock.advance(seconds=601)
    late = await kim.enter(code_page, await code_for(store, "kim@example.com"))
    assert late.alerts == ["The hold ran out before the code arrived, so the time is free again."]
    assert "10:00" in late.labels and "You can choose again:" in late.text
    assert (await rows(store, Appointment))[0].status == "expired"
    assert "This hold has ended" in (await kim.get(code_page)).text


async def test_a_forged_or_unknown_hold_address_is_not_found(page, store, clock):
    kim = PageVisitor(page, clock)
    code_page = await held_until_code(kim, store, "kim@example.com", **TEN)
    number = code_page.split("hold=")[1].split(".")[0]
    for forged in (f"{number}.0000000000000000", f"{int(number) + 1}.{code_page.split('.')[-1]}", "x"):
        assert (await kim.get(f"/book/code?hold={forged}")).status == 404
        assert (await kim.post("/book/code", {"hold": forged, "code": "123456"})).status == 404
    assert (await rows(store, Appointment))[0].status == "held"


# ---- names, days and holidays ------------------------------------------------------------------------


async def test_an_unknown_service_or_location_is_refused_with_what_there_is(page, clock):
    kim = PageVisitor(page, clock)
    yoga = await kim.get("/book", service="Yoga")
    assert yoga.alerts == ['I do not know the service "Yoga". You can book: Erstberatung, Heilgymnastik, Massage.']
    assert yoga.labels == ["Massage", "Heilgymnastik", "Erstberatung"]
    graz = await kim.get("/book", service="Massage", location="Graz")
    assert graz.alerts[0].startswith('I do not know "Graz" as a location')


async def test_a_hold_for_an_unknown_service_holds_nothing(page, store, clock):
    kim = PageVisitor(page, clock)
    form = (await kim.form(**TEN)).hidden
    clock.advance(seconds=5)
    sent = await kim.post("/book/hold", {**form, "service": "Yoga", "name": "Kim", "email": "kim@example.com"})
    assert sent.status == 409 and sent.alerts[0].startswith('I do not know the service "Yoga"')
    assert await count(store, Appointment) == 0 and await count(store, Outbox) == 0


async def test_a_holiday_is_refused_by_name_in_the_walk_and_at_the_hold(store, config, clock):
    desk = await open_desk(store, config, clock, holidays=True)
    server = await serve_page(desk)
    try:
        kim = PageVisitor(f"http://127.0.0.1:{server.port}", clock)
        days = await kim.get("/book", service="Massage", location="Linz", staff="Lukas Huber")
        assert "Tue 8 Dec" not in days.labels and days.labels[0] == "Thu 10 Dec"
        closed = await kim.get("/book", service="Massage", location="Linz", staff="Lukas Huber", day=TUESDAY)
        assert closed.alerts[0].startswith("Tuesday, December 8, 2026 is a public holiday (Immaculate Conception)")
        assert closed.labels[0] == "Thu 10 Dec"
        german = await PageVisitor(f"http://127.0.0.1:{server.port}", clock, lang="de").get(
            "/book", service="Massage", location="Linz", staff="Lukas Huber", day=TUESDAY)
        assert "Mariä Empfängnis" in german.alerts[0]
        form = (await kim.form(**{**TEN, "day": "2026-12-10"})).hidden
        clock.advance(seconds=5)
        sent = await kim.post("/book/hold", {**form, "day": TUESDAY, "name": "Kim", "email": "kim@example.com"})
        assert sent.status == 409 and "public holiday" in sent.alerts[0]
        assert await count(store, Appointment) == 0
    finally:
        await server.close()


async def test_a_time_outside_the_hours_or_too_soon_is_refused_with_fresh_times(page, clock):
    kim = PageVisitor(page, clock)
    lunch = await kim.get("/book", **at("12:00"))
    assert lunch.alerts[0].startswith("12:00 PM on Tuesday, December 8, 2026 cannot be booked online")
    assert "13:00" in lunch.labels
    soon = await kim.get("/book", **{**TEN, "day": "2026-12-07", "staff": "Anna Berger", "time": "08:30"})
    assert soon.alerts[0].startswith("Online bookings need at least 60 minutes' notice.")


# ---- framing, language, look, the popup script ------------------------------------------------------


async def test_only_the_listed_homepages_may_frame_the_page(desk, page, clock):
    for path in ("/book", "/book?service=Massage", "/book/code?hold=1.x"):
        answer = await PageVisitor(page, clock).get(path)
        async with aiohttp.ClientSession() as session, session.get(page + path) as response:
            policy = response.headers["Content-Security-Policy"]
        assert f"frame-ancestors {HOMEPAGE}" in policy and "default-src 'none'" in policy, answer.status
    server = await serve_page(desk, origins="")
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{server.port}/book") as r:
            assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
            assert r.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in r.headers
    finally:
        await server.close()


async def test_the_page_speaks_the_askers_language_and_takes_a_test_colour(page, clock):
    german = await PageVisitor(page, clock, lang="de-AT,de;q=0.9").get("/book")
    assert '<html lang="de">' in german.text and "Welche Leistung möchten Sie buchen?" in german.text
    english = await PageVisitor(page, clock, lang="de").get("/book", lang="en", accent="aa3300")
    assert '<html lang="en">' in english.text and "--accent: #aa3300; --on-accent: #ffffff;" in english.text
    assert "/book?service=Massage&amp;lang=en&amp;accent=%23aa3300" in english.text  # links keep both
    bad = await PageVisitor(page, clock).get("/book", accent="red;}body{display:none")
    assert "--accent: #2e86de;" in bad.text and "display:none" not in bad.text


async def test_the_setup_look_is_on_the_page(page, store, clock):
    async with store.uow() as uow:
        await uow.session.execute(update(Business).values(
            widget_accent="#10ac84", widget_font='"Source Sans 3", sans-serif',
            widget_css=".card > h1 { color: navy; }"))
        await uow.commit()
    styled = await PageVisitor(page, clock).get("/book")
    assert '--accent: #10ac84; --on-accent: #000000; --font: "Source Sans 3", sans-serif;' in styled.text
    assert ".card > h1 { color: navy; }" in styled.text  # a stylesheet, not escaped as HTML


async def test_the_popup_script_names_the_page_and_its_words(page, clock):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{page}/widget.js", headers={"Accept-Language": "en"}) as response:
            assert response.content_type == "application/javascript"
            script = await response.text()
    assert '"open": "Book online"' in script and '"open": "Online buchen"' in script
    assert 'new URL("/book?" + params.toString(), base.origin)' in script and "showModal()" in script


async def test_a_course_the_business_lacks_is_refused_in_the_chats_words(page, clock):
    course = await PageVisitor(page, clock).get("/book", course="Rückenfit")
    assert course.alerts == ['There is no course called "Rückenfit". No courses are coming up at the moment.']


async def test_frontdesk_run_serves_the_booking_page(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update(FRONTDESK_SECRET_KEY="k" * 32, FRONTDESK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/run.db",
               FRONTDESK_SETUP=str(PRACTICE), FRONTDESK_API_LISTEN=f"127.0.0.1:{port}",
               FRONTDESK_API_ORIGINS=HOMEPAGE)
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, process)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/book?service=Massage", headers={"Accept-Language": "de"}) as response:
                assert response.status == 200 and f"frame-ancestors {HOMEPAGE}" in response.headers[
                    "Content-Security-Policy"]
                assert "Wo möchten Sie hinkommen?" in await response.text()
            async with session.get(f"{url}/widget.js") as response:
                assert response.status == 200 and "showModal" in await response.text()
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-2000:]
