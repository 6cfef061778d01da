"""The booking page's HTTP edge (aiohttp): GET /book walks the chat's booking questions as links, POST /book/hold
holds the chosen time and mails the code, GET and POST /book/code take the code; GET /widget.js adds a button
that opens the page in an overlay. No cookies: the walk lives in the URL, the hold and its code in the database.

This module parses and renders; handlers.homepage.booking decides. Form robots are turned away here before
anything is read: a honeypot field and the signed time the form was handed out (handlers.homepage.guard).
Each request of a step (walk, course, hold, join, code, confirm) is told to the desk's observer on channel web
as route "page:STEP": answered (a page or a redirect), refused (4xx: the page said no or asks for a fix) or
error (5xx).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from aiohttp import web

from bot.api.pageview import (
    PAGE_CONFIG,
    PageConfig,
    Shown,
    frame_ancestors,
    links,
    price,
    render,
    shown,
    summary,
    widget,
)
from handlers.homepage import booking, course_page
from handlers.homepage.booking import PAGE, Visitor
from handlers.homepage.guard import Wanted, hold_of, hold_token, params_of, place_of, place_token, robot, stamp
from handlers.observing import Outcome
from handlers.router import Desk
from handlers.rules.addresses import canonical_email
from handlers.rules.codes import CODE_PATTERN, typed_code
from templates import page_asset

log = logging.getLogger(__name__)

MAX_NAME = 100  # characters of a name typed into the form
STEP = web.RequestKey("booking_step", str)  # the step a request is, for the observer: one of a few fixed names


def add_booking_page(app: web.Application, desk: Desk, origins: Iterable[str],
                     proxies: frozenset[str] = frozenset()) -> None:
    """The booking page's routes on the homepage server; `origins` may frame it (none: only the desk itself)."""
    app[PAGE_CONFIG] = PageConfig(desk, frame_ancestors(origins), proxies)
    app.router.add_get("/book", show_walk)
    app.router.add_post("/book/hold", hold)
    app.router.add_get("/book/code", show_code)
    app.router.add_post("/book/code", confirm)
    app.router.add_get("/book.css", stylesheet)
    app.router.add_get("/widget.js", widget_script)
    app.middlewares.append(failures)


@web.middleware
async def failures(request: web.Request, handler) -> web.StreamResponse:
    """A failure on our side is a page in the visitor's language, without details; the log has them. Each
    request of a step is counted once, by how it ended."""
    if not request.path.startswith("/book"):
        return await handler(request)
    started = perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as refused:
        observed(request, refused.status, started)
        raise
    except Exception:
        log.exception("booking page %s %s failed", request.method, request.path)
        observed(request, 500, started)
        view = await shown(request)
        return render(request, view, "problem", 500, heading=view.t("problem"), message=view.t("failed"))
    observed(request, response.status, started)
    return response


def observed(request: web.Request, status: int, started: float) -> None:
    """Tell the desk's observer how a step's request ended (a request of no step, such as a file, is not told)."""
    step = request.get(STEP)
    if step is None:
        return
    outcome: Outcome = "answered" if status < 400 else "refused" if status < 500 else "error"
    desk_of(request).observer.handled(PAGE, f"page:{step}", outcome, perf_counter() - started)


def desk_of(request: web.Request) -> Desk:
    return request.app[PAGE_CONFIG].desk


# ---- the walk --------------------------------------------------------------------------------


async def show_walk(request: web.Request) -> web.Response:
    """The next question of the walk for what the address asks so far, or the form once a time is chosen."""
    course = request.query.get("course", "").strip()
    request[STEP] = "course" if course else "walk"
    view = await shown(request)
    if course:
        found_course = await course_page.page_course(desk_of(request), view.visitor, course[:120])
        if isinstance(found_course, booking.Refused):
            return refused_page(request, view, found_course)
        return course_form(request, view, found_course, {}, {})
    found = await booking.page_walk(desk_of(request), view.visitor, Wanted.of(request.query))
    if isinstance(found, booking.Refused):
        return refused_page(request, view, found)
    if found.ask == "details":
        return details_page(request, view, found, {}, {})
    return render(request, view, "walk", heading=view.t(f"ask_{found.ask}"), step=found,
                  options=links(view, found.options), chosen=summary(view, found.query))


def refused_page(request: web.Request, view: Shown, refused: booking.Refused, status: int = 200) -> web.Response:
    """A clear no in the chat's words, with what can be chosen instead."""
    return render(request, view, "refused", status, heading=view.t("problem"), message=refused.text,
                  template=refused.template, options=links(view, refused.options), chosen=summary(view, refused.query))


def details_page(request: web.Request, view: Shown, step: booking.Step, values: dict[str, str],
                 errors: dict[str, str], status: int = 200, alert: str | None = None) -> web.Response:
    """The chosen time with the form for name and email (and a fresh stamp of when it was handed out)."""
    key = desk_of(request).config.secret_key
    return render(request, view, "details", status, heading=view.t("ask_details"), step=step,
                  chosen=summary(view, step.query), hidden=params_of(step.query), values=values, errors=errors,
                  alert=alert, stamp=stamp(key, desk_of(request).clock.now()), action=view.url("/book/hold"))


# ---- holding the time ------------------------------------------------------------------------


async def hold(request: web.Request) -> web.Response:
    """Hold the chosen time and mail the code, then show the code page; or say what is wrong with the form."""
    request[STEP] = "hold"
    view, desk = await shown(request), desk_of(request)
    form = await request.post()
    wanted = Wanted.of(form)
    suspect = robot(desk.config.secret_key, str(form.get("website", "")), str(form.get("started", "")),
                    desk.clock.now())
    if suspect in ("honeypot", "unsigned"):
        log.info("booking page: a form refused as a robot's (%s)", suspect)
        return render(request, view, "problem", 400, heading=view.t("problem"), message=view.t("robot"))
    values = {"name": " ".join(str(form.get("name", "")).split()), "email": str(form.get("email", "")).strip()}
    errors = field_errors(view, values)
    course = " ".join(str(form.get("course", ""))[:120].split())
    if course:
        request[STEP] = "join"
        return await join_course(request, view, course, values, errors, suspect)
    if suspect is not None or errors:
        return await form_again(request, view, wanted, values, errors, view.t(suspect) if suspect else None)
    email = canonical_email(values["email"]) or ""
    done = await booking.page_hold(desk, view.visitor, wanted, values["name"], email)
    if isinstance(done, booking.Refused):
        return refused_page(request, view, done, 409)
    token = hold_token(desk.config.secret_key, done.appointment_id)
    return see_other(view.url("/book/code", {"hold": token}))


def field_errors(view: Shown, values: dict[str, str]) -> dict[str, str]:
    """What is wrong with the typed name and address, by field."""
    errors = {}
    if not values["name"]:
        errors["name"] = view.t("name_missing")
    elif len(values["name"]) > MAX_NAME:
        errors["name"] = view.t("name_too_long", limit=MAX_NAME)
    if canonical_email(values["email"]) is None:
        errors["email"] = view.t("email_invalid")
    return errors


async def form_again(request: web.Request, view: Shown, wanted: Wanted, values: dict[str, str],
                     errors: dict[str, str], alert: str | None) -> web.Response:
    """The form once more, as it was filled in, with what to fix; nothing was held."""
    found = await booking.page_walk(desk_of(request), view.visitor, wanted)
    if isinstance(found, booking.Refused):
        return refused_page(request, view, found, 409)
    if found.ask != "details":
        return see_other(view.walk(found.query))
    return details_page(request, view, found, values, errors, 422 if errors else 400, alert)


# ---- a course -------------------------------------------------------------------------------


def course_form(request: web.Request, view: Shown, step: course_page.CourseStep, values: dict[str, str],
                errors: dict[str, str], status: int = 200, alert: str | None = None) -> web.Response:
    """The course (dates, price, free places) with the form for name and email."""
    desk = desk_of(request)
    return render(request, view, "course", status, heading=step.course.name, course=step.course,
                  price=price(view.lang, step.course.price), values=values, errors=errors, alert=alert,
                  stamp=stamp(desk.config.secret_key, desk.clock.now()), action=view.url("/book/hold"))


async def join_course(request: web.Request, view: Shown, course: str, values: dict[str, str],
                      errors: dict[str, str], suspect: str | None) -> web.Response:
    """Hold a place (or queue for one) and show the place's page; or the form again with what to fix."""
    desk = desk_of(request)
    if suspect is not None or errors:
        found = await course_page.page_course(desk, view.visitor, course)
        if isinstance(found, booking.Refused):
            return refused_page(request, view, found, 409)
        return course_form(request, view, found, values, errors, 422 if errors else 400,
                           view.t(suspect) if suspect else None)
    email = canonical_email(values["email"]) or ""
    done = await course_page.page_join(desk, view.visitor, course, values["name"], email)
    if isinstance(done, booking.Refused):
        return refused_page(request, view, done, 409)
    return see_other(view.url("/book/code", {"place": place_token(desk.config.secret_key, done.place_id)}))


async def place_page(request: web.Request, view: Shown, token: str, errors: dict[str, str], status: int = 200,
                     answer: booking.Answer | None = None) -> web.Response:
    """A place joined through the page: the field for its code, or what became of it."""
    desk = desk_of(request)
    number = place_of(desk.config.secret_key, token)
    placed = await course_page.page_place_view(desk, view.visitor, number) if number is not None else None
    if placed is None:
        return not_found(request, view)
    headings = {"held": "ask_code", "confirmed": "course_done_heading", "waiting": "course_waiting_heading"}
    ended = None
    if answer is not None and answer.outcome in ("exhausted", "expired", "gone"):
        ended = view.t(f"course_{answer.outcome}_text") if answer.outcome != "gone" else answer.text
    return render(request, view, "place", status, heading=view.t(headings.get(placed.state, "ended_heading")),
                  placed=placed, token=token, errors=errors, action=view.url("/book/code"),
                  again=view.url("/book", {"course": placed.course.name}), ended_text=ended)


# ---- the code --------------------------------------------------------------------------------


async def show_code(request: web.Request) -> web.Response:
    """The hold (or course place) with the field for its code; or, once it is settled or ended, what became of it."""
    request[STEP] = "code"
    kind = PLACE if "place" in request.query else HOLD
    return await kind.page(request, await shown(request), request.query.get(kind.field, ""), {})


async def code_page(request: web.Request, view: Shown, token: str, errors: dict[str, str], status: int = 200,
                    answer: booking.Answer | None = None) -> web.Response:
    desk = desk_of(request)
    number = hold_of(desk.config.secret_key, token)
    held = await booking.page_hold_view(desk, view.visitor, number) if number is not None else None
    if held is None:
        return not_found(request, view)
    headings = {"held": "ask_code", "confirmed": "done_heading", "requested": "requested_heading"}
    extra: dict[str, Any] = {}
    if answer is not None and answer.outcome in ("exhausted", "expired", "gone"):
        extra = {"ended_text": view.t(f"{answer.outcome}_text") if answer.outcome != "gone" else answer.text,
                 "options": links(view, answer.options)}
    return render(request, view, "code", status, heading=view.t(headings.get(held.state, "ended_heading")),
                  held=held, token=token, errors=errors, action=view.url("/book/code"),
                  again=view.walk(None), **extra)


@dataclass(frozen=True)
class CodeFor:
    """What a typed code settles: an appointment's hold or a course place, each with its own token and page."""

    field: str  # the form field and query parameter that carries the token
    number: Callable[[bytes, str], int | None]  # the token's row, if the token is ours
    check: Callable[[Desk, Visitor, int, str], Awaitable[booking.Answer]]
    page: Callable[..., Awaitable[web.Response]]
    settled: tuple[str, ...]  # outcomes after which the page shows the result


HOLD = CodeFor("hold", hold_of, booking.page_confirm, code_page, ("confirmed", "requested"))
PLACE = CodeFor("place", place_of, course_page.page_place_confirm, place_page, ("confirmed",))


async def confirm(request: web.Request) -> web.Response:
    """Check the typed code: a right one settles the hold or place (then the code page shows it), a wrong one
    says how many tries are left, the fifth releases the time or passes the place on."""
    request[STEP] = "confirm"
    view, desk = await shown(request), desk_of(request)
    form = await request.post()
    kind = PLACE if "place" in form else HOLD
    token, typed = str(form.get(kind.field, "")), typed_code(str(form.get("code", ""))[:40])
    number = kind.number(desk.config.secret_key, token)
    if number is None:
        return not_found(request, view)
    if not CODE_PATTERN.match(typed):
        return await kind.page(request, view, token, {"code": view.t("code_malformed")}, 422)
    answer = await kind.check(desk, view.visitor, number, typed)
    if answer.outcome in kind.settled:
        return see_other(view.url("/book/code", {kind.field: token}))
    if answer.outcome == "wrong":
        return await kind.page(request, view, token, {"code": answer.text}, 422)
    return await kind.page(request, view, token, {}, 200, answer)


def see_other(url: str) -> web.Response:
    """After a form: the page to show next, by GET (a reload then sends nothing twice)."""
    return web.Response(status=303, headers={"Location": url, "Cache-Control": "no-store"})


def not_found(request: web.Request, view: Shown) -> web.Response:
    return render(request, view, "problem", 404, heading=view.t("problem"), message=view.t("not_found"),
                  again=view.walk(None))


# ---- files -----------------------------------------------------------------------------------


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(text=page_asset("book.css"), content_type="text/css", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


async def widget_script(request: web.Request) -> web.Response:
    return widget(request, await shown(request))
