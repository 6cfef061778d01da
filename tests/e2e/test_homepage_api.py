"""The homepage API over real HTTP: a client against the running server, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest

from bot.api import ApiServer, build_app
from bot.app import build_handlers
from handlers.router import Desk
from handlers.setup import apply_setup
from storage.db import Store
from tests.helpers import Chat, code_for, labels, practice_setup

EXAMPLE = Path(__file__).parents[2] / "examples" / "practice.toml"
MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna
TUESDAY = "2026-12-08"  # Lukas in Linz 08–12, 13–18; Anna in Wels 09–17
HOMEPAGE = "https://www.physio-am-park.example"
EVERYTHING = """{ business { name timezone language } locations { name services { name } }
                  services { name minutes price locations { name } }
                  courses { name location capacity freePlaces price sessions { start end } } }"""


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    clock.current = MONDAY
    async with store.uow() as uow:
        # Tuesday 8 December's holiday left out, as in the other dated tests (tests/helpers.practice_setup)
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


async def serve(store: Store, clock, origins=(HOMEPAGE,)) -> ApiServer:
    return await ApiServer(build_app(store, clock, origins, "en"), "127.0.0.1", 0).start()


@pytest.fixture
async def api(desk, store, clock):
    server = await serve(store, clock)
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def post(url: str, query: str, **headers: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/graphql", json={"query": query}, headers=headers) as response:
            return response.status, await response.json()


async def ask(url: str, query: str, **headers: str) -> dict:
    """The data of a query that must succeed."""
    status, body = await post(url, query, **headers)
    assert status == 200 and "errors" not in body, body
    return body["data"]


async def refused(url: str, query: str, **headers: str) -> dict:
    """The one error of a query that must fail, as GraphQL says it (HTTP 200, no data, no trace)."""
    status, body = await post(url, query, **headers)
    assert status == 200 and body.get("data") is None, body
    [error] = body["errors"]
    assert "Traceback" not in error["message"] and "File \"" not in str(body)
    return error


def free_times(service: str, day: str, location: str | None = None) -> str:
    where = f', location: "{location}"' if location else ""
    return f'{{ freeTimes(service: "{service}", date: "{day}"{where}) {{ start end staff location }} }}'


# ---- what a homepage reads ----------------------------------------------------------------------


async def test_a_homepage_reads_the_business_its_locations_services_and_courses(api):
    data = await ask(api, EVERYTHING)
    assert data["business"] == {"name": "Physio am Park", "timezone": "Europe/Vienna", "language": "de"}
    assert [loc["name"] for loc in data["locations"]] == ["Linz", "Wels"]
    assert data["services"][0] == {"name": "Massage", "minutes": 60, "price": "65.00",
                                   "locations": [{"name": "Linz"}, {"name": "Wels"}]}
    assert [(s["name"], s["price"]) for s in data["services"]] == [
        ("Massage", "65.00"), ("Heilgymnastik", "55.00"), ("Erstberatung", None)]
    assert data["locations"][1]["services"] == [{"name": "Massage"}, {"name": "Heilgymnastik"},
                                                {"name": "Erstberatung"}]  # Anna offers all three in Wels
    assert data["courses"] == []  # no course with dates is stored yet


async def test_no_personal_data_leaves_through_the_api(api):
    everything = str(await ask(api, EVERYTHING)) + str(await ask(api, free_times("Massage", TUESDAY)))
    for private in ("@", "1001", "1002", "empfang", "Eva Wimmer", "hilfe"):
        assert private not in everything  # no address, no chat id, no staff member without a calendar
    assert "Lukas Huber" in everything  # staff appear by display name only


async def test_free_times_carry_the_business_offset_staff_and_location(api):
    times = (await ask(api, free_times("massage", TUESDAY)))["freeTimes"]  # names in any case, as in the chat
    assert times[0] == {"start": "2026-12-08T08:00:00+01:00", "end": "2026-12-08T09:00:00+01:00",
                        "staff": "Lukas Huber", "location": "Linz"}
    assert {(t["staff"], t["location"]) for t in times} == {("Lukas Huber", "Linz"), ("Anna Berger", "Wels")}
    assert [t["start"] for t in times] == sorted(t["start"] for t in times)
    in_wels = (await ask(api, free_times("Massage", TUESDAY, "wels")))["freeTimes"]
    assert in_wels and {t["location"] for t in in_wels} == {"Wels"}
    assert (await ask(api, free_times("Massage", "2026-12-06")))["freeTimes"] == []  # Sunday: closed
    assert (await ask(api, free_times("Massage", "2026-12-01")))["freeTimes"] == []  # past: nothing to book
    assert (await ask(api, free_times("Massage", "2027-06-01")))["freeTimes"] == []  # beyond max_days_ahead


# ---- the same times as the chat ------------------------------------------------------------------


async def chat_times(chat: Chat, text: str) -> set[str]:
    """The time buttons the chat's walk shows for a typed step (HH:MM, local)."""
    [times] = await chat.send(text)
    return set(labels(times))


async def api_times(url: str, location: str, staff: str | None = None) -> set[str]:
    """HH:MM of the API's free Massage times on Tuesday at `location` (for `staff`, or for anyone)."""
    times = (await ask(url, free_times("Massage", TUESDAY, location)))["freeTimes"]
    return {t["start"][11:16] for t in times if staff is None or t["staff"] == staff}


async def assert_both_agree(url: str, lea: Chat) -> set[str]:
    """The API and the chat offer the same Massage times on Tuesday, per location and per staff member."""
    linz = await chat_times(lea, f"/book Massage at Linz with any on {TUESDAY}")
    assert await api_times(url, "Linz") == linz
    assert await api_times(url, "Wels") == await chat_times(lea, f"/book Massage at Wels with any on {TUESDAY}")
    assert await api_times(url, "Linz", "Lukas Huber") == await chat_times(
        lea, f"/book Massage at Linz with Lukas Huber on {TUESDAY}")
    return linz


async def test_free_times_agree_with_the_chat_and_a_booking_takes_the_slot_from_both(desk, store, api, clock):
    lea = Chat(desk, clock, "telegram:6")
    before = await assert_both_agree(api, lea)
    assert {"08:00", "10:00", "17:00"} <= before and "12:00" not in before
    kim = Chat(desk, clock, "telegram:5")
    await kim.send("/email kim@example.com")
    await kim.send(await code_for(store, "kim@example.com"))
    [services] = await kim.send("/book")  # the button walk, as a customer taps it
    [where] = await kim.tap(services, "Massage")
    [whom] = await kim.tap(where, "Linz")
    [days] = await kim.tap(whom, "Lukas Huber")
    [times] = await kim.tap(days, "Tue 8 Dec")
    [held] = await kim.tap(times, "10:00")
    assert "I am holding" in held.text
    during_hold = await assert_both_agree(api, lea)
    assert before - during_hold == {"09:15", "09:30", "09:45", "10:00", "10:15", "10:30", "10:45"}
    clock.advance(seconds=601)  # the hold ran out unconfirmed: the time is free again, in both at once
    assert await assert_both_agree(api, lea) == before
    [held] = await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    [booked] = await kim.send(await code_for(store, "kim@example.com"))
    assert "Booked!" in booked.text
    assert await assert_both_agree(api, lea) == during_hold


# ---- bad questions -------------------------------------------------------------------------------


@pytest.mark.parametrize("query, code, words", [
    (free_times("Yoga", TUESDAY), "UNKNOWN_SERVICE",
     "There is no service called “Yoga”. Services: Massage, Heilgymnastik, Erstberatung."),
    (free_times("Massage", "2026-02-30"), "BAD_DATE", "“2026-02-30” is not a date."),
    (free_times("Massage", "8.12.2026"), "BAD_DATE", "“8.12.2026” is not a date."),
    (free_times("Massage", "1999-12-08"), "DATE_RANGE", "1999-12-08 lies outside the years 2000 to 2100."),
    (free_times("Massage", TUESDAY, "Graz"), "UNKNOWN_LOCATION", "There is no location called “Graz”."),
])
async def test_a_question_about_nothing_we_know_is_a_graphql_error_in_words(api, query, code, words):
    error = await refused(api, query, **{"Accept-Language": "en-GB,en;q=0.9"})
    assert error["extensions"] == {"code": code} and error["message"].startswith(words)
    assert error["path"] == ["freeTimes"]


async def test_errors_speak_the_askers_language_else_the_businesss(api):
    query = free_times("Yoga", TUESDAY)
    assert (await refused(api, query, **{"Accept-Language": "fr, de;q=0.8"}))["message"].startswith(
        "Eine Leistung „Yoga“ gibt es nicht.")
    assert (await refused(api, query, **{"Accept-Language": "de;q=0.5, en"}))["message"].startswith(
        "There is no service")
    assert (await refused(api, query))["message"].startswith("Eine Leistung")  # the practice speaks German


@pytest.mark.parametrize("query, words", [
    ("{ business { name ", "Syntax Error"),
    ("{ business { email } }", "Cannot query field 'email' on type 'Business'."),
    ('mutation { book(service: "Massage") }', "The mutation operation is not supported by the schema."),
    ("{ freeTimes(date: \"2026-12-08\") { start } }", "of type 'String!' is required"),
])
async def test_a_malformed_query_is_a_graphql_error(api, query, words):
    assert words in (await refused(api, query))["message"]


async def test_introspection_stays_on_and_no_mutation_exists(api):
    schema = (await ask(api, "{ __schema { queryType { name } mutationType { name } } }"))["__schema"]
    assert schema == {"queryType": {"name": "Query"}, "mutationType": None}


async def test_a_query_nested_too_deep_is_refused_before_anything_is_read(api):
    ok = "{ services { locations { services { locations { services { name } } } } } }"  # depth 5
    assert (await ask(api, ok))["services"][0]["locations"][0]["services"]
    deep = "{ services { locations { services { locations { services { locations { services { name } } } } } } } }"
    assert "exceeds maximum operation depth of 6" in (await refused(api, deep))["message"]


async def test_too_many_aliases_or_tokens_are_refused(api):
    aliases = " ".join(f'd{n}: freeTimes(service: "Massage", date: "{TUESDAY}") {{ start }}' for n in range(16))
    assert "16 aliases found. Allowed: 15" in (await refused(api, f"{{ {aliases} }}"))["message"]
    tokens = "{ " + " ".join("business { name }" for _ in range(300)) + " }"  # 1 200 tokens, in 5 kB
    assert "Document contains more than 1000 tokens" in (await refused(api, tokens))["message"]


def doubling_fragments(levels: int) -> str:
    """A query whose fragments each spread the next one twice: small to send, 2^levels spreads written out."""
    chain = [f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels)]
    return "\n".join(["query { ...F0 }", *chain, f"fragment F{levels} on Query {{ business {{ name }} }}"])


async def test_fragments_spread_over_and_over_are_measured_once_not_once_per_spread(api):
    started = time.perf_counter()
    assert (await ask(api, doubling_fragments(20)))["business"] == {"name": "Physio am Park"}
    assert time.perf_counter() - started < 2  # each spread followed anew: a million steps on the event loop
    nested = "{ services { locations { services { ...Deeper } } } } " \
             "fragment Deeper on Service { locations { services { locations { services { name } } } } }"
    assert "exceeds maximum operation depth of 6" in (await refused(api, nested))["message"]
    eight = " ".join(f'd{n}: freeTimes(service: "Massage", date: "{TUESDAY}") {{ start }}' for n in range(8))
    twice = f"{{ ...Eight ...Eight }} fragment Eight on Query {{ {eight} }}"
    assert "16 aliases found. Allowed: 15" in (await refused(api, twice))["message"]


async def test_a_spread_of_an_unknown_fragment_is_named_as_such(api):
    assert (await refused(api, "{ ...Missing }"))["message"] == "Unknown fragment 'Missing'."


async def test_an_oversize_body_is_413_and_get_is_refused(api):
    async with aiohttp.ClientSession() as session:
        padded = '{"query": "{ business { name } }", "pad": "' + "x" * 20_000 + '"}'
        async with session.post(f"{api}/graphql", data=padded, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 413
        async with session.get(f"{api}/graphql", params={"query": "{ business { name } }"}) as r:
            assert r.status == 405 and r.headers["Allow"] == "POST"
        async with session.post(f"{api}/graphql", data="query=x", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 400


# ---- CORS ----------------------------------------------------------------------------------------


async def test_cors_grants_only_a_listed_origin(api):
    asks_to_post = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    async with aiohttp.ClientSession() as session:
        async with session.options(f"{api}/graphql", headers={"Origin": HOMEPAGE, **asks_to_post}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == HOMEPAGE
            assert r.headers["Access-Control-Allow-Methods"] == "POST"
            assert "content-type" in r.headers["Access-Control-Allow-Headers"].lower()
        async with session.options(f"{api}/graphql", headers={"Origin": "https://evil.example", **asks_to_post}) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
        query = {"query": "{ business { name } }"}
        async with session.post(f"{api}/graphql", json=query, headers={"Origin": HOMEPAGE}) as r:
            assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == HOMEPAGE
            assert "Origin" in r.headers.getall("Vary")
        async with session.post(f"{api}/graphql", json=query, headers={"Origin": "https://evil.example"}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers and "Origin" in r.headers.getall("Vary")


# ---- health --------------------------------------------------------------------------------------


def dead_url(store: Store, tmp_path: Path) -> str:
    """A database of the same kind that does not answer: a folder that is not there, a port nobody serves."""
    if store.dialect == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/gone/frontdesk.db"
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"


async def test_healthz_answers_200_while_the_database_answers_and_503_when_it_does_not(api, store, clock, tmp_path):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api}/healthz") as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        dead = Store.from_url(dead_url(store, tmp_path))
        server = await serve(dead, clock)
        try:
            async with session.get(f"http://127.0.0.1:{server.port}/healthz") as r:
                assert r.status == 503 and await r.json() == {"status": "unavailable"}
            async with session.post(f"http://127.0.0.1:{server.port}/graphql", json={"query": EVERYTHING}) as r:
                body = await r.json()
        finally:
            await server.close()
            await dead.dispose()
    # what failed on our side is masked: no driver message, no path, no SQL reaches the asker
    assert {e["message"] for e in body["errors"]} == {"Something went wrong on our side. Please try again later."}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"INTERNAL"}


# ---- inside `frontdesk run` ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_healthy(url: str, process: asyncio.subprocess.Process, seconds: float = 90) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(int(seconds * 5)):
            assert process.returncode is None, "frontdesk run stopped early"
            try:
                async with session.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the API never answered")


async def test_frontdesk_run_serves_the_api_while_running_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update(FRONTDESK_SECRET_KEY="k" * 32, FRONTDESK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/run.db",
               FRONTDESK_SETUP=str(EXAMPLE), FRONTDESK_API_LISTEN=f"127.0.0.1:{port}",
               FRONTDESK_API_ORIGINS=f"{HOMEPAGE}/")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, process)
        data = await ask(url, "{ business { name } services { name } }", Origin=HOMEPAGE)
        assert data["business"]["name"] == "Physio am Park" and len(data["services"]) == 3
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert "homepage API listening on 127.0.0.1" in stderr.decode() and "frontdesk stopped" in stderr.decode()


async def test_frontdesk_run_names_an_api_address_it_cannot_listen_on(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        env.update(FRONTDESK_SECRET_KEY="k" * 32, FRONTDESK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/run.db",
                   FRONTDESK_API_LISTEN=f"127.0.0.1:{port}")
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 2 and b"Traceback" not in stderr
    assert stderr.decode().strip().splitlines()[-1].startswith(
        f"frontdesk: FRONTDESK_API_LISTEN '127.0.0.1:{port}': cannot listen there")

