"""Export presets and bad input against a real store (SQLite and PostgreSQL), and how another capability adds
a list to `export`."""
from __future__ import annotations

import asyncio

import pytest

from handlers import exports, identity, welcome
from handlers.context import Context
from handlers.messages import make_files
from handlers.registry import ExportList, Handlers
from handlers.router import Desk
from storage.models import Address, Audit, ExportPreset, Outbox
from tests.conftest import inbound
from tests.helpers import count, person_of, rows
from tests.integration.test_exports import ANNA, KIM, LUKAS, MIA, desk, export, frame  # noqa: F401 - desk: fixture


async def presets_of(store, sender: str) -> list[tuple[str, str, str | None, list, str]]:
    """The sender's presets: name, list, kind, fields, arguments."""
    owner = await person_of(store, sender)
    return [(p.name, p.list_name, p.kind, p.fields, p.args)
            for p in sorted(await rows(store, ExportPreset, ExportPreset.person_id == owner), key=lambda p: p.id)]


async def test_a_preset_is_saved_used_listed_replaced_and_deleted(desk, clock, store):
    reply, _ = await export(desk, clock, ANNA, "/export preset Mailing customers xlsx name, email")
    assert reply.template == "export_preset_saved" and "Preset Mailing saved" in reply.text
    assert await presets_of(store, ANNA) == [("Mailing", "customers", "xlsx", ["name", "email"], "")]
    reply, file = await export(desk, clock, ANNA, "/export mailing")  # any case
    assert file.name.endswith(".xlsx") and list(frame(file).columns) == ["name", "email"]
    assert "(preset Mailing)" in reply.text
    _, file = await export(desk, clock, ANNA, "/export mailing csv VIP")  # typed choices win over the preset's
    assert file.name == "customers-VIP-2026-12-01.csv" and list(frame(file)["name"]) == ["Kim Ott"]
    reply, _ = await export(desk, clock, ANNA, "/export preset MAILING customers id")
    assert "Preset MAILING replaced" in reply.text
    assert await presets_of(store, ANNA) == [("MAILING", "customers", None, ["id"], "")]
    reply, _ = await export(desk, clock, ANNA, "/export presets")
    assert reply.template == "export_presets" and "• MAILING: customers as CSV, fields: id" in reply.text
    reply, _ = await export(desk, clock, ANNA, "/export preset delete mailing")
    assert reply.template == "export_preset_deleted" and await presets_of(store, ANNA) == []


async def test_a_preset_keeps_the_lists_arguments(desk, clock, store):
    await export(desk, clock, MIA, '/export preset klasse members "Klasse 5a" name')
    _, file = await export(desk, clock, MIA, "/export klasse")
    assert file.name == "members-Klasse-5a-2026-12-01.csv" and list(frame(file)["name"]) == ["Kim Ott", "Mia Lang"]


async def test_presets_are_each_persons_own(desk, clock, store):
    await export(desk, clock, ANNA, "/export preset mine bookings id")
    reply, file = await export(desk, clock, KIM, "/export mine")
    assert file is None and reply.template == "export_unknown"
    reply, _ = await export(desk, clock, KIM, "/export presets")
    assert "no export presets yet" in reply.text
    await export(desk, clock, KIM, "/export preset mine bookings date")  # the same name, another person
    assert await presets_of(store, KIM) == [("mine", "bookings", None, ["date"], "")]
    assert await presets_of(store, ANNA) == [("mine", "bookings", None, ["id"], "")]


async def test_two_saves_of_one_name_at_once_leave_one_preset(desk, clock, store):
    """Two chats of one person do not wait for each other (each sender has its own turn): the constraint decides."""
    kim = await person_of(store, KIM)
    async with store.uow() as uow:
        uow.session.add(Address(address="console:kim", kind="console", person_id=kim, verified=True,
                                created_at=clock.now()))
        await uow.commit()
    fields = ("id", "date", "start", "end", "service", "staff")
    replies = await asyncio.gather(*(
        desk.handle(inbound(KIM if n % 2 else "console:kim", f"/export preset daily bookings {field}", clock=clock))
        for n, field in enumerate(fields)))
    assert all(reply.template == "export_preset_saved" for [reply] in replies)
    [(name, _, _, [field], _)] = await presets_of(store, KIM)
    assert name == "daily" and field in fields


# ---- bad input: a clear answer, nothing changes --------------------------------------------------------

@pytest.mark.parametrize("sender, line, template, says", [
    (ANNA, "/export invoices", "export_unknown",
     'no list and none of your presets called "invoices". You can export: audit, bookings'),
    (ANNA, "/export customers name,emial", "export_unknown_field",
     "has no field emial. Allowed fields: id, name, email, phone, groups, upcoming, language, created"),
    (ANNA, "/export customers pdf", "export_bad_kind", "choose csv or xlsx"),
    (ANNA, "/export bookings 2026-02-30", "export_bad_dates", '"2026-02-30" is not a date'),
    (ANNA, "/export bookings 2026-12-31 2026-12-01", "export_bad_dates", "is before the first"),
    (ANNA, "/export bookings soon", "export_bad_arguments", "Type: export bookings [FROM [TO]]"),
    (ANNA, "/export nosuchpreset", "export_unknown", 'none of your presets called "nosuchpreset"'),
    (ANNA, "/export preset delete nothing", "export_unknown_preset", 'no preset called "nothing"'),
    (ANNA, "/export preset x", "export_preset_usage", "export preset NAME LIST"),
    (ANNA, "/export preset customers customers name", "export_preset_bad_name", "the name of a list"),
    (ANNA, "/export preset a.b customers name", "export_preset_bad_name", "use one word"),
    (ANNA, "/export preset x nolist name", "export_unknown", 'no list called "nolist"'),
    (ANNA, "/export preset x customers emial", "export_unknown_field", "Allowed fields"),
    (ANNA, "/export preset x members Klasse", "export_unknown_field", "has no field klasse"),
    (KIM, "/export preset x audit id", "export_not_allowed", "may not export the list audit"),
    (LUKAS, "/export day 2026-02-30", "calendar_invalid", "There is no day 2026-02-30: February 2026 has 28 days"),
])
async def test_bad_input_gets_a_clear_answer_and_changes_nothing(desk, clock, store, sender, line, template, says):
    await export(desk, clock, ANNA, "/export preset keep customers id")
    presets, mails = await presets_of(store, ANNA), await count(store, Outbox)
    reply, file = await export(desk, clock, sender, line)
    assert (reply.template, file) == (template, None)
    assert says in reply.text
    assert await presets_of(store, ANNA) == presets and await count(store, Outbox) == mails
    assert await count(store, Audit, Audit.action.in_(("export", "export_preset_deleted"))) == 0


async def test_a_preset_whose_fields_no_longer_fit_names_the_allowed_ones(desk, clock, store):
    async with store.uow() as uow:
        uow.session.add(ExportPreset(person_id=await person_of(store, ANNA), name="old", name_key="old",
                                     list_name="customers", kind=None, fields=["fax"], args="",
                                     created_at=clock.now(), updated_at=clock.now()))
        await uow.commit()
    reply, _ = await export(desk, clock, ANNA, "/export old")
    assert reply.template == "export_unknown_field" and "has no field fax" in reply.text


async def test_german_answers(desk, clock):
    reply, _ = await export(desk, clock, ANNA, "/export kunden name,fax", lang="de")
    assert reply.text.startswith("Die Liste customers hat kein Feld fax. Mögliche Felder: id, name")
    reply, _ = await export(desk, clock, ANNA, "/export kunden", lang="de")
    assert reply.text.startswith("3 Zeilen aus customers als CSV")


# ---- another capability's list -------------------------------------------------------------------------

async def course_rows(ctx: Context, args: str) -> list[dict]:
    return [{"name": "Yoga", "places": 12, "secret": "x"}, {"name": "=Pilates", "places": 0, "secret": "y"}]


COURSES = ExportList("courses", course_rows, ("name", "places", "secret"), ("name", "places"), aliases=("kurse",))


async def test_another_capability_adds_a_list_by_registering_it(store, config, clock):
    parts = (welcome.handlers(), identity.handlers(), exports.handlers(), Handlers(exports={"courses": COURSES}))
    desk = Desk(store, config, Handlers.combine(*parts), clock)
    reply, file = await export(desk, clock, KIM, "/export kurse")
    assert frame(file).to_dict("records") == [{"name": "Yoga", "places": "12"}, {"name": "'=Pilates", "places": "0"}]
    reply, _ = await export(desk, clock, KIM, "/export")
    assert "• courses: name*, places*, secret" in reply.text


def test_two_capabilities_cannot_register_the_same_list():
    with pytest.raises(ValueError, match="courses"):
        Handlers.combine(Handlers(exports={"courses": COURSES}), Handlers(exports={"courses": COURSES}))


async def test_the_file_is_made_after_the_unit_of_work(store, config, clock):
    async def rows_source(ctx: Context, args: str) -> list[dict]:
        return [{"n": 1}]

    desk = Desk(store, config, Handlers.combine(
        exports.handlers(), Handlers(exports={"numbers": ExportList("numbers", rows_source, ("n",))})), clock)
    async with store.uow() as uow:
        [reply] = await desk.handle_in(uow, inbound(KIM, "/export numbers", clock=clock), files_later=True)
        assert reply.attachments == [] and len(reply.later) == 1  # nothing slow inside the transaction
        await uow.commit()
    [reply] = await make_files([reply])
    assert reply.later == [] and reply.attachments[0].data == b"\xef\xbb\xbfn\r\n1\r\n"
    async with store.uow() as uow:  # handle_in without files_later makes them itself (the email edge's way)
        [reply] = await desk.handle_in(uow, inbound(KIM, "/export numbers", clock=clock))
    assert reply.later == [] and len(reply.attachments) == 1
    assert await count(store, Audit, Audit.action == "export") == 1
    assert (await rows(store, Audit, Audit.action == "export"))[0].detail["rows"] == 1
