"""Joining a course on the booking page over real HTTP with a plain client, on SQLite and PostgreSQL: the course,
the form, the place's code from the mail, the waiting list of a full course, and the bad paths (unknown course,
form robots, wrong codes, too many open holds from one connection)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from bot.app import build_handlers
from handlers.jobs.runner import JobRunner
from handlers.router import Desk
from handlers.setup import apply_setup, parse_setup
from storage.models import Address, Course, CoursePlace, Outbox
from tests.conftest import inbound
from tests.helpers import code_for, count, mails_to, rows
from tests.integration.test_courses import COURSE, EXAMPLE, LUKAS, NOW
from tests.pageclient import PageVisitor, serve_page

RUECKENFIT = "Rückenfit"


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    clock.current = NOW
    async with store.uow() as uow:
        await apply_setup(uow, parse_setup(EXAMPLE.read_text() + COURSE, "practice.toml"), clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


@pytest.fixture
async def page(desk):
    server = await serve_page(desk)
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def join(visitor: PageVisitor, email: str, name: str = "Kim Lee", **more: str):
    return await visitor.hold(name, email, course=RUECKENFIT, **more)


async def enter(visitor: PageVisitor, place_page: str, code: str):
    token = parse_qs(urlsplit(place_page).query)["place"][0]
    return await visitor.post("/book/code", {"place": token, "code": code})


async def taken(store) -> int:
    async with store.uow() as uow:
        return (await uow.session.scalar(select(Course.taken).where(Course.name == RUECKENFIT))) or 0


async def test_a_visitor_joins_a_course_with_the_mailed_code(page, store, clock):
    kim = PageVisitor(page, clock)
    shown = await kim.get("/book", course="rückenfit")
    assert shown.status == 200 and "<h1>Rückenfit</h1>" in shown.text
    assert "Place: Linz" in shown.text and "Price: 120.00" in shown.text and "3 of 3 places free" in shown.text
    assert "Thursday, December 10, 2026, 18:00–19:30" in shown.text
    assert "Thursday, December 17, 2026, 18:00–19:30" in shown.text
    assert shown.hidden == {"course": RUECKENFIT, "started": shown.hidden["started"]}
    sent = await join(kim, "Kim@Example.com")
    assert sent.status == 303 and sent.location.startswith("/book/code?place="), (sent.status, sent.alerts)
    [place] = await rows(store, CoursePlace)
    assert (place.status, place.channel, place.address) == ("held", "web", "email:kim@example.com")
    [mail] = await mails_to(store, "kim@example.com")
    assert mail.subject.endswith("is your code for the course Rückenfit")
    waiting = await kim.get(sent.location)
    assert "We sent a 6-digit code to k…\u2060@example.com." in waiting.text
    assert "This place is held for you until 10:10." in waiting.text  # ten minutes, on Vienna's clock
    done = await enter(kim, sent.location, await code_for(store, "kim@example.com"))
    assert done.status == 303 and done.location == sent.location
    confirmed = await kim.get(sent.location)
    assert "Place confirmed!" in confirmed.text and "Your place in Rückenfit is confirmed" in confirmed.text
    [place] = await rows(store, CoursePlace)
    assert place.status == "confirmed" and await taken(store) == 1
    [address] = await rows(store, Address, Address.address == "email:kim@example.com")
    assert address.verified
    assert (await mails_to(store, "kim@example.com"))[-1].subject == "Your place: Rückenfit from Dec 10, 2026"
    assert any("Neue Online-Anmeldung für Rückenfit" in m.text for m in await mails_to(store, LUKAS))
    again = await kim.get("/book", course=RUECKENFIT)
    assert "2 of 3 places free" in again.text


async def test_a_full_course_puts_the_visitor_on_the_waiting_list_with_the_position(page, store, clock):
    for number in range(3):
        visitor = PageVisitor(page, clock, client=f"203.0.113.{number + 1}")
        sent = await join(visitor, f"p{number}@example.com")
        assert sent.status == 303, sent.alerts
    assert await taken(store) == 3
    late = PageVisitor(page, clock, client="198.51.100.9")
    full = await late.get("/book", course=RUECKENFIT)
    assert "The course is full: you can join the waiting list." in full.text and "Join the waiting list" in full.text
    first = await join(late, "w1@example.com")
    assert first.status == 303
    shown = await late.get(first.location)
    assert "You are on the waiting list" in shown.text and "waiting list at number 1." in shown.text
    second = await join(PageVisitor(page, clock, client="198.51.100.10"), "w2@example.com")
    assert "waiting list at number 2." in (await late.get(second.location)).text
    assert await mails_to(store, "w1@example.com") == [] and await taken(store) == 3
    waiting = [p for p in await rows(store, CoursePlace) if p.status == "waiting"]
    assert sorted(p.address for p in waiting) == ["email:w1@example.com", "email:w2@example.com"]


async def test_an_unknown_course_is_refused_with_the_coming_ones(page, store, clock):
    kim = PageVisitor(page, clock)
    unknown = await kim.get("/book", course="Yoga")
    assert unknown.alerts == ['There is no course called "Yoga". Coming courses: Rückenfit.']
    form = (await kim.get("/book", course=RUECKENFIT)).hidden
    clock.advance(seconds=5)
    posted = await kim.post("/book/hold", {**form, "course": "Yoga", "name": "Kim", "email": "kim@example.com"})
    assert posted.status == 409 and "There is no course called" in posted.alerts[0]
    assert await count(store, CoursePlace) == 0 and await count(store, Outbox) == 0


async def test_a_filled_honeypot_or_a_hasty_form_holds_no_place(page, store, clock):
    kim = PageVisitor(page, clock)
    robot = await join(kim, "bot@example.com", website="http://spam.example")
    assert robot.status == 400 and robot.alerts == [
        "This form could not be sent. Please reload the page and try again."]
    quick = await join(kim, "kim@example.com", wait=1)
    assert quick.status == 400 and quick.alerts == [
        "That was very quick. Please check your details and send the form again."]
    assert "<h1>Rückenfit</h1>" in quick.text  # the course's form again, as it was filled in
    bad = await join(kim, "not-an-address")
    assert bad.status == 422 and "Please enter an email address like name@example.com." in bad.text
    assert await count(store, CoursePlace) == 0 and await count(store, Outbox) == 0


async def test_wrong_codes_count_and_the_fifth_frees_the_place(page, store, clock):
    kim = PageVisitor(page, clock)
    sent = await join(kim, "kim@example.com")
    right = await code_for(store, "kim@example.com")
    wrong = "000000" if right != "000000" else "111111"
    malformed = await enter(kim, sent.location, "12ab")
    assert malformed.status == 422 and "Please enter the 6 digits from the mail." in malformed.text
    first = await enter(kim, sent.location, wrong)
    assert first.status == 422 and "That code is not right. 4 tries left." in first.text
    for _ in range(3):
        await enter(kim, sent.location, wrong)
    last = await enter(kim, sent.location, wrong)
    assert "That was the fifth wrong code" in last.text and "Back to the course" in last.text
    [place] = await rows(store, CoursePlace)
    assert place.status == "expired" and await taken(store) == 0
    late = await enter(kim, sent.location, right)
    assert late.status == 200 and "The place was not confirmed in time" not in late.text
    assert (await rows(store, CoursePlace))[0].status == "expired"
    forged = await kim.get("/book/code", place="1.0000000000000000")
    assert forged.status == 404


async def test_one_connection_keeps_at_most_two_places_on_hold(page, store, clock):
    kim = PageVisitor(page, clock)
    for email in ("a@example.com", "b@example.com"):
        assert (await join(kim, email)).status == 303
    third = await join(kim, "c@example.com")
    assert third.status == 409 and "2 times are already on hold from this connection" in third.alerts[0]
    assert await taken(store) == 2 and await mails_to(store, "c@example.com") == []


async def test_an_address_already_in_the_course_is_told_nothing_more_in_german(page, store, clock):
    kim = PageVisitor(page, clock, lang="de")
    german = await kim.get("/book", course=RUECKENFIT)
    assert "Donnerstag, 10. Dezember 2026, 18:00–19:30" in german.text and "3 von 3 Plätzen frei" in german.text
    assert "Preis: 120,00" in german.text
    sent = await join(kim, "kim@example.com")
    assert "Dieser Platz ist bis 10:10 für Sie reserviert." in (await kim.get(sent.location)).text
    again = await join(PageVisitor(page, clock, client="198.51.100.20", lang="de"), "kim@example.com")
    assert again.status == 409 and again.alerts == [
        "Diese E-Mail-Adresse ist schon für Rückenfit angemeldet oder steht auf der Warteliste. Mehr steht in den "
        "E-Mails, die wir an sie geschickt haben; eine Antwort darauf erreicht uns."]
    assert await count(store, CoursePlace) == 1 and len(await mails_to(store, "kim@example.com")) == 1


async def test_a_visitor_on_the_waiting_list_is_offered_a_freed_place_by_mail(page, desk, store, clock):
    for number in range(3):
        assert (await join(PageVisitor(page, clock, client=f"203.0.113.{number + 1}"), f"p{number}@example.com")
                ).status == 303
    assert (await join(PageVisitor(page, clock, client="198.51.100.9"), "w1@example.com")).status == 303
    assert await mails_to(store, "w1@example.com") == []
    clock.advance(minutes=11)  # the three holds ran out without their codes
    await JobRunner(desk, desk.jobs).run_due()
    [offer] = await mails_to(store, "w1@example.com")
    code = offer.subject.split()[0]
    assert code.isdigit() and len(code) == 6, offer.subject
    [place] = await rows(store, CoursePlace, CoursePlace.address == "email:w1@example.com")
    assert place.status == "held"
    replies = await desk.handle(inbound("email:w1@example.com", code, clock=clock))  # a reply to the offer mail
    assert any("You have a place in Rückenfit" in r.text for r in replies), [r.text for r in replies]
    [place] = await rows(store, CoursePlace, CoursePlace.address == "email:w1@example.com")
    assert place.status == "confirmed"
