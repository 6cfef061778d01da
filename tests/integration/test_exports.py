"""Exports through the router against a real store (SQLite and PostgreSQL): every list, who may export what,
the fields, and both file kinds, read back with pandas as a spreadsheet program would."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from bot.app import build_handlers
from handlers.appointments import claim
from handlers.messages import Attachment, Reply
from handlers.router import Desk
from handlers.setup import apply_setup, load_setup
from storage.models import (
    Address,
    Appointment,
    Audit,
    CustomerGroup,
    CustomerGroupMember,
    Location,
    Member,
    Membership,
    Person,
    Role,
    SeatGroup,
    Service,
    Ticket,
)
from tests.conftest import inbound
from tests.helpers import count

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "practice.toml"
ANNA, LUKAS, EVA = "telegram:1001", "telegram:1002", "telegram:1003"  # owner, provider, assistant
KIM, BO, MIA = "telegram:5001", "telegram:5002", "telegram:6001"  # customers; Mia manages "Klasse 5a"
EVIL = '=HYPERLINK("http://evil.example","click")'
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def utc(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=timezone.utc)


async def person(uow, now, name: str, *addresses: str, phone: str | None = None) -> int:
    row = Person(name=name, created_at=now)
    uow.session.add(row)
    await uow.session.flush()
    for address in addresses:
        uow.session.add(Address(address=address, kind=address.split(":")[0], person_id=row.id, verified=True,
                                created_at=now))
    if phone:
        uow.session.add(Member(person_id=row.id, status="activated", phone=phone))
    return row.id


async def booked(uow, now, staff: str, customer: int, start: datetime, status="confirmed", note=None) -> int:
    ids = {name: await uow.session.scalar(select(model.id).where(model.name == name))
           for model, name in ((Service, "Massage"), (Location, "Linz"))}
    staff_id = await uow.session.scalar(select(Address.person_id).where(Address.address == staff))
    row = Appointment(service_id=ids["Massage"], location_id=ids["Linz"], staff_id=staff_id, customer_id=customer,
                      start_at=start, end_at=start + timedelta(minutes=60), status=status, sequence=0,
                      channel="telegram", created_by="test", created_at=now, note=note,
                      hold_expires_at=now - timedelta(minutes=1) if status == "held" else None)
    if status in ("confirmed", "held"):
        await claim(uow, row, now)
    else:
        uow.session.add(row)
        await uow.session.flush()
    return row.id


async def seat_group(uow, now, name: str, *people: int) -> int:
    group = SeatGroup(name=name, kind="course", seats_bought=5, seats_taken=len(people), created_by="test",
                      created_at=now)
    uow.session.add(group)
    await uow.session.flush()
    for number, pid in enumerate(people):
        uow.session.add(Membership(group_id=group.id, person_id=pid, enrolled_at=now + timedelta(minutes=number),
                                   enrolled_by="test"))
    return group.id


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    """The demo practice with two customers, appointments, groups, a manager and tickets."""
    now = clock.now()
    async with store.uow() as uow:
        await apply_setup(uow, load_setup(EXAMPLE), now)
        kim = await person(uow, now, "Kim Ott", KIM, "email:kim@example.org", phone="+4930123456")
        bo = await person(uow, now, EVIL, BO, "email:bo@example.org")
        mia = await person(uow, now, "Mia Lang", MIA)
        vip = CustomerGroup(name="VIP")
        uow.session.add(vip)
        await uow.session.flush()
        uow.session.add(CustomerGroupMember(group_id=vip.id, person_id=kim))
        await booked(uow, now, LUKAS, kim, utc(8, 9), note="knee, left")  # Tue 10:00 in Vienna
        await booked(uow, now, LUKAS, bo, utc(9, 9), status="cancelled")
        await booked(uow, now, ANNA, kim, utc(10, 8))
        await booked(uow, now, LUKAS, bo, utc(11, 9), status="held")  # the hold ran out: never a booking
        five_a = await seat_group(uow, now, "Klasse 5a", kim, mia)
        await seat_group(uow, now, "Klasse 6b", bo)
        uow.session.add(Role(person_id=mia, role="manager", scope=str(five_a)))
        uow.session.add_all([
            Ticket(customer_id=kim, email="kim@example.org", subject="=1+1 help", status="open", created_at=now,
                   updated_at=now),
            Ticket(customer_id=bo, email="bo@example.org", subject="old", status="closed", created_at=now,
                   updated_at=now)])
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


async def export(desk: Desk, clock, sender: str, line: str, lang: str = "en") -> tuple[Reply, Attachment | None]:
    [reply] = await desk.handle(inbound(sender, line, clock=clock, lang=lang))
    assert not reply.later  # every file was made before the reply left the desk
    return reply, (reply.attachments[0] if reply.attachments else None)


def frame(file: Attachment) -> pd.DataFrame:
    """The file as a spreadsheet user sees it: CSV read with ';' and the BOM, XLSX through openpyxl."""
    if file.name.endswith(".xlsx"):
        assert file.mime == XLSX
        return pd.read_excel(io.BytesIO(file.data), engine="openpyxl", dtype=str, keep_default_na=False)
    assert file.mime == "text/csv" and file.data.startswith(b"\xef\xbb\xbf")
    return pd.read_csv(io.BytesIO(file.data), sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)


# ---- the lists ------------------------------------------------------------------------------------


async def test_an_admin_exports_the_customers_with_the_default_fields(desk, clock):
    reply, file = await export(desk, clock, ANNA, "/export customers")
    assert reply.template == "export_done" and file.name == "customers-2026-12-01.csv"
    table = frame(file)
    assert list(table.columns) == ["id", "name", "email", "phone", "groups"]
    by_name = table.set_index("email")
    assert by_name.loc["kim@example.org", "name"] == "Kim Ott"
    assert by_name.loc["kim@example.org", "phone"] == "+49 30 123456"  # stays text in a spreadsheet
    assert by_name.loc["kim@example.org", "groups"] == "VIP"
    assert by_name.loc["bo@example.org", "name"] == "'" + EVIL  # never a formula
    assert "Anna Berger" not in set(table["name"])  # the team are no customers
    assert "3 rows of customers as CSV" in reply.text  # Kim, Bo and Mia (a manager is a customer too)


async def test_fields_are_chosen_and_xlsx_is_a_spreadsheet(desk, clock):
    reply, file = await export(desk, clock, ANNA, "/export customers xlsx email, name,upcoming")
    table = frame(file)
    assert file.name.endswith(".xlsx") and list(table.columns) == ["email", "name", "upcoming"]
    assert table.set_index("email").loc["kim@example.org", "upcoming"] == "2"
    assert "Fields: email, name, upcoming" in reply.text


async def test_a_customer_query_narrows_the_customer_list(desk, clock):
    _, file = await export(desk, clock, ANNA, "/export customers VIP")
    assert list(frame(file)["name"]) == ["Kim Ott"]


async def test_bookings_are_each_persons_own_the_staffs_calendar_or_all(desk, clock):
    expected = {
        ANNA: ["2026-12-08", "2026-12-09", "2026-12-10"],  # cancelled ones too, with their status
        EVA: ["2026-12-08", "2026-12-09", "2026-12-10"],  # an assistant who books for colleagues sees all
        LUKAS: ["2026-12-08", "2026-12-09"],  # his calendar
        KIM: ["2026-12-08", "2026-12-10"],  # her own
        BO: ["2026-12-09"],
    }
    for sender, days in expected.items():
        _, file = await export(desk, clock, sender, "/export bookings")
        assert list(frame(file)["date"]) == days, sender


async def test_bookings_show_local_times_and_hide_the_teams_notes_from_customers(desk, clock):
    _, file = await export(desk, clock, ANNA, "/export bookings 2026-12-08 2026-12-08 date,start,end,status,note")
    assert frame(file).to_dict("records") == [
        {"date": "2026-12-08", "start": "10:00", "end": "11:00", "status": "confirmed", "note": "knee, left"}]
    _, file = await export(desk, clock, KIM, "/export bookings 2026-12-08 2026-12-08 note,customer,staff")
    assert frame(file).to_dict("records") == [{"note": "", "customer": "Kim Ott", "staff": "Lukas Huber"}]


async def test_a_date_range_limits_the_bookings(desk, clock):
    _, file = await export(desk, clock, ANNA, "/export bookings 2026-12-09 2026-12-31 xlsx")
    table = frame(file)
    assert list(table["date"]) == ["2026-12-09 00:00:00", "2026-12-10 00:00:00"]  # real date cells in XLSX
    assert list(table["status"]) == ["cancelled", "confirmed"]
    _, file = await export(desk, clock, ANNA, "/export termine 2026-12-10")  # from that day on
    assert list(frame(file)["date"]) == ["2026-12-10"]


async def test_day_and_week_export_what_the_calendar_shows(desk, clock):
    _, file = await export(desk, clock, LUKAS, "/export week 2026-12-08")
    assert list(frame(file)["customer"]) == ["Kim Ott"]  # live ones, his calendar
    _, file = await export(desk, clock, ANNA, "/export week 2026-12-08")
    assert list(frame(file)["date"]) == ["2026-12-08", "2026-12-10"]
    _, file = await export(desk, clock, ANNA, "/export day 2026-12-10 staff,start")
    assert frame(file).to_dict("records") == [{"staff": "Anna Berger", "start": "09:00"}]
    reply, file = await export(desk, clock, LUKAS, "/export day 2026-12-10 Anna")
    assert file is None and reply.template == "calendar_denied"


async def test_a_manager_exports_the_members_of_their_groups_only(desk, clock):
    _, file = await export(desk, clock, MIA, "/export members")
    table = frame(file)
    assert set(table["group"]) == {"Klasse 5a"} and list(table["name"]) == ["Kim Ott", "Mia Lang"]
    assert table.iloc[0]["phone"] == "+49 30 123456" and table.iloc[0]["status"] == "activated"
    _, file = await export(desk, clock, MIA, '/export members "Klasse 5a" name,seat_used')
    assert frame(file).to_dict("records") == [{"name": "Kim Ott", "seat_used": "false"},
                                              {"name": "Mia Lang", "seat_used": "false"}]
    reply, file = await export(desk, clock, MIA, "/export members Klasse 6b")
    assert file is None and reply.template == "groups_refused"  # a foreign group looks unknown
    _, file = await export(desk, clock, ANNA, "/export mitglieder")
    assert set(frame(file)["group"]) == {"Klasse 5a", "Klasse 6b"}


async def test_support_exports_tickets(desk, clock):
    _, file = await export(desk, clock, ANNA, "/export tickets")
    assert frame(file).to_dict("records")[0]["subject"] == "'=1+1 help"
    _, file = await export(desk, clock, ANNA, "/export tickets all id,status,messages")
    assert list(frame(file)["status"]) == ["open", "closed"]
    reply, _ = await export(desk, clock, ANNA, "/export tickets someday")
    assert reply.template == "tickets_bad_state"


async def test_the_audit_log_is_exported_for_admins(desk, clock, store):
    await export(desk, clock, KIM, "/export audit")  # refused, and logged
    _, file = await export(desk, clock, ANNA, "/export audit 2026-12-01 2026-12-01 denied")
    [entry] = frame(file).to_dict("records")
    assert (entry["actor"], entry["action"], entry["subject"]) == (KIM, "denied", "export audit")
    assert entry["at"] == "2026-12-01 10:00:00"  # 09:00 UTC on the fake clock, in Vienna
    _, file = await export(desk, clock, ANNA, "/export audit 2026-12-02")
    assert frame(file).empty


# ---- who may export what ----------------------------------------------------------------------------

@pytest.mark.parametrize("sender, line", [
    (KIM, "customers"), (LUKAS, "customers"), (KIM, "day"), (KIM, "week 2026-12-08"), (KIM, "members Klasse 5a"),
    (LUKAS, "members"), (KIM, "tickets"), (LUKAS, "audit"), (MIA, "audit"), (EVA, "audit"),
])
async def test_lists_a_person_may_not_see_are_refused_and_logged(desk, clock, store, sender, line):
    before = await count(store, Audit, Audit.action == "denied")
    reply, file = await export(desk, clock, sender, f"/export {line}")
    assert file is None and reply.template == "export_not_allowed"
    assert await count(store, Audit, Audit.action == "denied") == before + 1
    assert await count(store, Audit, Audit.action == "export") == 0


async def test_export_alone_lists_only_the_lists_the_asker_may_export(desk, clock):
    reply, _ = await export(desk, clock, KIM, "/export")
    assert reply.template == "export_usage" and "• bookings [FROM [TO]]:" in reply.text
    assert "customers" not in reply.text and "audit" not in reply.text
    reply, _ = await export(desk, clock, ANNA, "/export", lang="de")
    listed = "• customers [Name, E-Mail oder Gruppe]: id*, name*, email*, phone*, groups*, upcoming, language"
    assert listed in reply.text


async def test_every_export_is_logged_with_its_fields(desk, clock, store):
    await export(desk, clock, ANNA, "/export customers name")
    async with store.uow() as uow:
        entry = await uow.session.scalar(select(Audit).where(Audit.action == "export"))
    assert (entry.subject, entry.detail["fields"], entry.detail["rows"], entry.detail["kind"]) == \
        ("customers", ["name"], 3, "csv")
