"""Member accounts through the router against a real store (SQLite and PostgreSQL)."""
import asyncio
import csv
import io
import json
import re

import pandas
import pytest
from sqlalchemy import select

from handlers import admin, identity, members, welcome
from handlers.bootstrap import ensure_owners
from handlers.members import credentials, membership
from handlers.registry import Handlers
from handlers.router import Desk
from handlers.rules.profile import verify_secret
from storage.models import (
    Address,
    Audit,
    Choice,
    Code,
    Conversation,
    Credential,
    Member,
    Membership,
    Outbox,
    Person,
    Role,
    SeatGroup,
)
from tests.conftest import SECRET, inbound
from tests.helpers import templates

ADMIN = "telegram:1001"
KIM = "Kim Novak kim@example.com phone=01 234 56 78 device=Yealink T54W services=Voicemail,Queue"


def make_desk(store, config, clock) -> Desk:
    parts = (welcome.handlers(), identity.handlers(), admin.handlers(), members.account_handlers())
    return Desk(store, config, Handlers.combine(*parts), clock)


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    async with store.uow() as uow:
        await ensure_owners(uow, [ADMIN, "email:boss@example.com"], clock.now())
        await uow.commit()
    return make_desk(store, config, clock)


async def ask(desk, clock, sender, text="", choice=None, lang="en"):
    return await desk.handle(inbound(sender, text, clock=clock, choice=choice, lang=lang))


async def said(desk, clock, sender, text="", choice=None, lang="en") -> str:
    return "\n".join(r.text for r in await ask(desk, clock, sender, text, choice, lang))


async def add(desk, clock, spec=KIM) -> int:
    """Add a member as the admin; returns their id."""
    reply = await said(desk, clock, ADMIN, f"/member add {spec}")
    email = next(w for w in spec.split() if "@" in w)
    assert "pending" in reply, reply
    async with desk.store.uow() as uow:
        return await uow.session.scalar(select(Address.person_id).where(Address.address == f"email:{email}"))


async def invitation(store, email) -> tuple[str, str]:
    """The code and the /start payload of the latest invitation mail to `email`."""
    async with store.uow() as uow:
        mail = await uow.session.scalar(select(Outbox).where(Outbox.recipient == email, Outbox.subject.contains(
            "invitation")).order_by(Outbox.id.desc()).limit(1))
    return mail.subject.split()[0], re.search(r"/start (acc-\S+)", mail.text).group(1)


async def activate(desk, clock, spec=KIM, chat="telegram:2002") -> int:
    person_id = await add(desk, clock, spec)
    email = next(w for w in spec.split() if "@" in w)
    _, payload = await invitation(desk.store, email)
    assert "activated" in await said(desk, clock, chat, f"/start {payload}")
    return person_id


async def member_row(store, person_id) -> Member | None:
    async with store.uow() as uow:
        return await uow.session.get(Member, person_id)


async def make_group(store, clock, name, kind="course", seats=5) -> int:
    async with store.uow() as uow:
        group = SeatGroup(name=name, kind=kind, seats_bought=seats, seats_taken=0, created_by=ADMIN,
                          created_at=clock.now())
        uow.session.add(group)
        await uow.commit()
        return group.id


async def actions(store, action) -> list[Audit]:
    async with store.uow() as uow:
        return list((await uow.session.scalars(select(Audit).where(Audit.action == action))).all())


def secret_in(text: str) -> str:
    """The credential line of a shown-once message (after the first blank line)."""
    return text.split("\n\n")[1].strip()


# ---- status -------------------------------------------------------------------------------------

async def test_an_added_member_is_pending_with_an_e164_number_and_the_default_extension(desk, clock):
    reply = await said(desk, clock, ADMIN, f"/member add {KIM}")
    assert "status: pending" in reply and "+4312345678" in reply and "Extension: 5678" in reply
    async with desk.store.uow() as uow:
        member = await uow.session.scalar(select(Member))
        email = await uow.session.scalar(select(Address).where(Address.address == "email:kim@example.com"))
        mail = await uow.session.scalar(select(Outbox).where(Outbox.recipient == "kim@example.com"))
    assert (member.status, member.first_name, member.last_name) == ("pending", "Kim", "Novak")
    assert (member.phone, member.extension, member.device_model) == ("+4312345678", "5678", "Yealink T54W")
    assert member.services == ["Voicemail", "Queue"]
    assert not email.verified
    code = mail.subject.split()[0]
    payload = re.search(r"/start acc-(\S+)", mail.text).group(1)
    assert code.isdigit() and code in mail.text
    assert membership.link_digest(SECRET, "acc", payload) == member.invitation_token
    assert payload not in await everything_stored(desk.store, mail=False)  # only the mail has the link
    [added] = await actions(desk.store, "member_added")
    assert added.actor == ADMIN and added.detail["phone"] == "+4312345678"


async def test_german_admins_get_german_answers(desk, clock):
    reply = await said(desk, clock, ADMIN, f"/mitglied neu {KIM}", lang="de")
    assert "Status: ausstehend" in reply and "Durchwahl: 5678" in reply


async def test_accepting_by_deep_link_activates_and_links_the_chat(desk, clock):
    person_id = await add(desk, clock)
    _, payload = await invitation(desk.store, "kim@example.com")
    assert "Welcome, Kim Novak" in await said(desk, clock, "telegram:2002", f"/start {payload}")
    member = await member_row(desk.store, person_id)
    assert member.status == "activated" and member.activated_at == clock.now() and member.invitation_token is None
    async with desk.store.uow() as uow:
        chat = await uow.session.scalar(select(Address).where(Address.address == "telegram:2002"))
    assert chat.person_id == person_id
    assert "not (or no longer) valid" in await said(desk, clock, "telegram:2002", f"/start {payload}")
    [activated] = await actions(desk.store, "member_activated")
    assert activated.actor == "telegram:2002" and activated.detail == {"via": "link"}


async def test_accepting_by_replying_with_the_code_activates_and_verifies_the_email(desk, clock):
    person_id = await add(desk, clock)
    code, _ = await invitation(desk.store, "kim@example.com")
    assert "not a code" not in await said(desk, clock, "telegram:2002", code)  # from another address it is unknown
    assert (await member_row(desk.store, person_id)).status == "pending"
    assert "activated" in await said(desk, clock, "email:kim@example.com", code)
    assert (await member_row(desk.store, person_id)).status == "activated"
    async with desk.store.uow() as uow:
        email = await uow.session.scalar(select(Address).where(Address.address == "email:kim@example.com"))
    assert email.verified


async def test_an_admin_cannot_be_taken_over_by_clicking_someone_elses_link(desk, clock):
    person_id = await add(desk, clock)
    _, payload = await invitation(desk.store, "kim@example.com")
    assert "meant for someone else" in await said(desk, clock, ADMIN, f"/start {payload}")
    assert (await member_row(desk.store, person_id)).status == "pending"


async def test_an_expired_invitation_makes_the_member_failed_and_the_admin_sees_why(desk, clock):
    person_id = await add(desk, clock)
    lea = await add(desk, clock, "Lea Berg lea@example.com")
    _, payload = await invitation(desk.store, "kim@example.com")
    clock.advance(days=15)
    assert "no longer valid" in await said(desk, clock, "telegram:2002", f"/start {payload}")
    assert (await member_row(desk.store, person_id)).status == "failed"
    listing = await said(desk, clock, ADMIN, "/member")
    assert "Kim Novak · failed" in listing and "Lea Berg · failed · the invitation expired on" in listing
    card = await said(desk, clock, ADMIN, f"/member {person_id}")
    assert "Status: failed – the invitation expired on" in card
    failed = await actions(desk.store, "member_failed")
    assert [(f.subject, f.detail) for f in failed] == [(f"member:{i}", {"reason": "invitation_expired"})
                                                       for i in (person_id, lea)]
    described = membership.describe_failure("en", await member_row(desk.store, lea), "Europe/Vienna")
    assert described.startswith("the invitation expired on")
    assert "member invite" in await said(desk, clock, ADMIN, f"/member delete {person_id}")


async def test_a_bounced_invitation_shows_its_reason_and_a_new_invitation_makes_them_pending(desk, clock):
    person_id = await add(desk, clock)
    async with desk.store.uow() as uow:
        assert await membership.mark_failed(uow, person_id, "bounced: 550 5.1.1 user unknown", now=clock.now())
        await uow.commit()
    assert "failed – bounced: 550 5.1.1 user unknown" in await said(desk, clock, ADMIN, f"/member {person_id}")
    assert "New invitation" in await said(desk, clock, ADMIN, f"/member invite {person_id}")
    member = await member_row(desk.store, person_id)
    assert member.status == "pending" and member.failure_reason is None
    _, payload = await invitation(desk.store, "kim@example.com")
    assert membership.link_digest(SECRET, "acc", payload.removeprefix("acc-")) == member.invitation_token


# ---- pending members: what may change -----------------------------------------------------------

async def test_a_pending_member_may_change_profile_and_services(desk, clock):
    person_id = await add(desk, clock)
    reply = await said(desk, clock, ADMIN,
                       f"/member set {person_id} first=Katharina services=Voicemail mobile=0664 1234567")
    assert "first name: Kim → Katharina" in reply and "mobile number: – → +436641234567" in reply
    member = await member_row(desk.store, person_id)
    assert (member.first_name, member.services, member.mobile) == ("Katharina", ["Voicemail"], "+436641234567")
    [changed] = await actions(desk.store, "member_changed")
    assert changed.actor == ADMIN and changed.detail["first"] == ["Kim", "Katharina"]


async def test_a_pending_member_may_not_change_configuration(desk, clock):
    person_id = await add(desk, clock)
    for change in ("phone=01 9999999", "device=none", "ext=42"):
        reply = await said(desk, clock, ADMIN, f"/member set {person_id} {change}")
        assert "can be changed only once the member is activated" in reply, change
    member = await member_row(desk.store, person_id)
    assert (member.phone, member.device_model, member.extension) == ("+4312345678", "Yealink T54W", "5678")


async def test_an_activated_member_may_change_configuration_and_the_extension_follows_the_number(desk, clock):
    person_id = await activate(desk, clock)
    reply = await said(desk, clock, ADMIN, f"/member set {person_id} phone=01 2224321 device=none")
    assert "extension: 5678 → 4321" in reply
    member = await member_row(desk.store, person_id)
    assert (member.phone, member.extension, member.device_model) == ("+4312224321", "4321", "none")


async def test_a_first_name_over_23_characters_is_refused(desk, clock):
    reply = await said(desk, clock, ADMIN, "/member add Maximiliane-Alexandrinaa Berger max@example.com")
    assert 'has 24 characters; at most 23 fit' in reply
    async with desk.store.uow() as uow:
        assert await uow.session.scalar(select(Member)) is None


async def test_an_invalid_phone_number_is_refused_with_the_value(desk, clock):
    reply = await said(desk, clock, ADMIN, "/member add Kim Novak kim@example.com phone=12ab")
    assert '"12ab" is not a valid number' in reply


async def test_a_pending_member_cannot_be_deleted(desk, clock):
    person_id = await add(desk, clock)
    reply = await said(desk, clock, ADMIN, f"/member delete {person_id}")
    assert "Only activated members can be deleted" in reply
    assert await member_row(desk.store, person_id) is not None
    async with desk.store.uow() as uow:
        assert await uow.session.get(Conversation, ADMIN) is None


# ---- extensions and groups ----------------------------------------------------------------------

async def test_an_extension_clash_names_the_other_member(desk, clock):
    kim = await add(desk, clock)
    reply = await said(desk, clock, ADMIN, "/member add Lea Berg lea@example.com phone=01 9995678")
    assert f"extension 5678 belongs to Kim Novak (#{kim}) already" in reply
    reply = await said(desk, clock, ADMIN, "/member add Lea Berg lea@example.com phone=01 2345678")
    assert f"number +4312345678 belongs to Kim Novak (#{kim})" in reply
    assert "pending" in await said(desk, clock, ADMIN, "/member add Lea Berg lea@example.com phone=01 9995678 ext=5679")


async def test_a_pending_member_added_to_a_queue_gets_a_warning(desk, clock):
    await make_group(desk.store, clock, "Hotline", kind="queue")
    await make_group(desk.store, clock, "Yoga")
    person_id = await add(desk, clock)
    replies = await ask(desk, clock, ADMIN, f"/member group {person_id} hotline")
    assert 'now in "Hotline"' in replies[0].text
    assert "Careful: Kim Novak is pending" in replies[1].text
    assert len(await ask(desk, clock, ADMIN, f"/member group {person_id} Yoga")) == 1  # not a queue
    activated = await activate(desk, clock, "Lea Berg lea@example.com", chat="telegram:3003")
    assert len(await ask(desk, clock, ADMIN, f"/member group {activated} Hotline")) == 1  # activated
    async with desk.store.uow() as uow:
        hotline = await uow.session.scalar(select(SeatGroup).where(SeatGroup.name == "Hotline"))
        assert hotline.seats_taken == 2
        assert len((await uow.session.scalars(select(Membership))).all()) == 3
    grouped = (await actions(desk.store, "member_grouped"))[0]
    assert grouped.actor == ADMIN and grouped.detail == {"group": "Hotline"}


async def test_a_pending_member_holds_a_seat_and_uses_it_on_accepting(desk, clock):
    await make_group(desk.store, clock, "Yoga")
    person_id = await add(desk, clock)
    await ask(desk, clock, ADMIN, f"/member group {person_id} Yoga")
    async with desk.store.uow() as uow:
        assert not await uow.session.scalar(select(Membership.seat_used))
    _, payload = await invitation(desk.store, "kim@example.com")
    await ask(desk, clock, "telegram:2002", f"/start {payload}")
    async with desk.store.uow() as uow:
        assert await uow.session.scalar(select(Membership.seat_used))


async def test_a_group_without_free_seats_says_how_to_buy_more(desk, clock):
    await make_group(desk.store, clock, "Tiny", seats=0)
    person_id = await add(desk, clock)
    assert "no free seat" in await said(desk, clock, ADMIN, f"/member group {person_id} Tiny")


async def test_putting_a_member_into_a_group_twice_at_once_takes_one_seat(desk, clock):
    await make_group(desk.store, clock, "Yoga")
    person_id = await add(desk, clock)
    results = await asyncio.gather(*(ask(desk, clock, ADMIN, f"/member group {person_id} Yoga") for _ in range(2)))
    texts = [r[0].text for r in results]
    assert sum('now in "Yoga"' in t for t in texts) == 1
    assert sum('in "Yoga" already' in t for t in texts) == 1
    async with desk.store.uow() as uow:
        assert (await uow.session.scalar(select(SeatGroup.seats_taken))) == 1
        assert len((await uow.session.scalars(select(Membership))).all()) == 1


async def test_two_chats_clicking_one_invitation_link_at_once_activate_once_and_link_one(desk, clock):
    person_id = await add(desk, clock)
    _, payload = await invitation(desk.store, "kim@example.com")
    chats = ("telegram:2002", "telegram:2003")
    texts = ["\n".join(r.text for r in replies) for replies in await asyncio.gather(
        *(ask(desk, clock, chat, f"/start {payload}") for chat in chats))]
    assert sum("Welcome, Kim Novak" in t for t in texts) == 1
    assert sum("wrong on my side" in t for t in texts) == 0
    assert len(await actions(desk.store, "member_activated")) == 1
    async with desk.store.uow() as uow:
        linked = (await uow.session.scalars(select(Address).where(
            Address.address.in_(chats), Address.person_id == person_id))).all()
    assert len(linked) == 1  # the loser's chat stays its own


async def test_expiring_invitations_logs_each_member_once(desk, clock):
    person_id = await add(desk, clock)
    member = await member_row(desk.store, person_id)
    async with desk.store.uow() as uow:
        assert await membership.expire_invitations(uow, member.invitation_expires_at) == 1  # due now: run out
        assert await membership.expire_invitations(uow, member.invitation_expires_at) == 0
        await uow.commit()
    assert (await member_row(desk.store, person_id)).status == "failed"
    [failed] = await actions(desk.store, "member_failed")
    assert failed.subject == f"member:{person_id}" and failed.detail == {"reason": membership.REASON_EXPIRED}


# ---- deleting -----------------------------------------------------------------------------------

async def test_deleting_asks_first_and_keep_keeps_the_member(desk, clock):
    person_id = await activate(desk, clock)
    [question] = await ask(desk, clock, ADMIN, f"/member delete {person_id}")
    assert "cannot be undone" in question.text
    keep = next(c for c in question.choices if c.label == "Keep")
    assert "Nothing deleted" in await said(desk, clock, ADMIN, choice=keep.key)
    assert (await member_row(desk.store, person_id)).status == "activated"
    yes = next(c for c in question.choices if c.label == "Delete for good")
    assert "no open question" in await said(desk, clock, ADMIN, choice=yes.key)  # the question was answered
    assert await member_row(desk.store, person_id) is not None


async def test_a_confirmed_delete_leaves_the_groups_frees_the_number_and_tells_the_others(desk, clock):
    group_id = await make_group(desk.store, clock, "Hotline", kind="queue")
    kim = await activate(desk, clock)
    lea = await activate(desk, clock, "Lea Berg lea@example.com phone=01 3334444", chat="telegram:3003")
    max_ = await add(desk, clock, "Max Roth max@example.com")
    for person_id in (kim, lea, max_):
        await ask(desk, clock, ADMIN, f"/member group {person_id} Hotline")
    [question] = await ask(desk, clock, ADMIN, f"/member delete {kim}")
    assert "Hotline" in question.text and "not refunded" in question.text
    reply = await said(desk, clock, ADMIN, "yes")
    assert "Kim Novak is deleted" in reply and "not refunded" in reply and "2 other members told" in reply
    assert "+4312345678 and extension 5678 are free again" in reply
    async with desk.store.uow() as uow:
        assert await uow.session.get(Member, kim) is None
        left = (await uow.session.scalars(select(Membership.person_id).where(Membership.group_id == group_id))).all()
        assert sorted(left) == sorted([lea, max_])
        assert (await uow.session.get(SeatGroup, group_id)).seats_taken == 3  # used seats are not refunded
        notices = (await uow.session.scalars(
            select(Outbox).where(Outbox.text.contains("no longer has a member")))).all()
    assert sorted(n.recipient for n in notices) == ["max@example.com", "telegram:3003"]
    [deleted] = await actions(desk.store, "member_deleted")
    assert deleted.actor == ADMIN and deleted.detail["extension"] == "5678" and deleted.detail["told"] == 2
    # the number and its extension are free at once: a new member takes both
    assert "pending" in await said(desk, clock, ADMIN, "/member add Neo Nova neo@example.com phone=+43 1 2345678")


async def test_a_customer_cannot_use_member_words_and_is_logged(desk, clock):
    person_id = await add(desk, clock)
    for text in (f"/member {person_id}", f"/member delete {person_id}", f"/credentials {person_id}",
                 f"/unlock {person_id}"):
        assert templates(await ask(desk, clock, "telegram:5", text)) == ["not_allowed"], text
    denied = await actions(desk.store, "denied")
    assert [(d.actor, d.subject) for d in denied] == [("telegram:5", w) for w in
                                                      ("member", "member", "credentials", "unlock")]


async def test_a_group_manager_may_not_read_or_change_member_records(desk, clock):
    """A manager manages seats in their group (handlers/members), nothing else: cards, set, lists stay admin-only."""
    group_id = await make_group(desk.store, clock, "Yoga")
    inside = await activate(desk, clock)
    outside = await add(desk, clock, "Lea Berg lea@example.com")
    await ask(desk, clock, ADMIN, f"/member group {inside} Yoga")
    async with desk.store.uow() as uow:
        manager = Person(name="Mia Manager", created_at=clock.now())
        uow.session.add(manager)
        await uow.session.flush()
        uow.session.add_all([Address(address="telegram:4004", kind="telegram", person_id=manager.id, verified=True,
                                     created_at=clock.now()),
                             Role(person_id=manager.id, role="manager", scope=str(group_id))])
        await uow.commit()
    for text in (f"/member {inside}", f"/member {outside}", "/member list", f"/member delete {inside}",
                 f"/member set {inside} device=none", f"/member set {inside} first=Kira",
                 f"/member group {outside} Yoga", f"/credentials {inside}", "/credentials Yoga"):
        replies = await ask(desk, clock, "telegram:4004", text)
        reply = "\n".join(r.text for r in replies)
        assert templates(replies) == ["not_allowed"] and "Kim" not in reply and "Lea" not in reply, text
    assert (await member_row(desk.store, inside)).first_name == "Kim"


# ---- credentials --------------------------------------------------------------------------------

async def everything_stored(store, mail=True) -> str:
    """Every text the database holds where a secret could leak: audit, outbox, codes, flows, buttons."""
    async with store.uow() as uow:
        parts = [json.dumps(a.detail) + (a.subject or "") for a in await uow.session.scalars(select(Audit))]
        parts += [(o.subject or "") + o.text for o in await uow.session.scalars(select(Outbox)) if mail]
        parts += [m.invitation_token or "" for m in await uow.session.scalars(select(Member))]
        parts += [c.target + c.digest for c in await uow.session.scalars(select(Code))]
        parts += [json.dumps(c.data) for c in await uow.session.scalars(select(Conversation))]
        parts += [c.command for c in await uow.session.scalars(select(Choice))]
        parts += [c.digest for c in await uow.session.scalars(select(Credential))]
    return "\n".join(parts)


async def test_credentials_are_shown_once_and_only_a_hash_is_kept(desk, clock):
    person_id = await activate(desk, clock)
    [shown] = await ask(desk, clock, ADMIN, f"/credentials {person_id}")
    password = secret_in(shown.text)
    assert shown.ephemeral_seconds == 60 and "disappears in 60 seconds" in shown.text and len(password) == 16
    async with desk.store.uow() as uow:
        [credential] = (await uow.session.scalars(select(Credential))).all()
    assert credential.kind == "password" and verify_secret(password, credential.digest)
    assert password not in await everything_stored(desk.store)
    [issued] = await actions(desk.store, "credentials_issued")
    assert issued.actor == ADMIN and issued.detail == {"kind": "password", "chosen": False}
    [code] = await ask(desk, clock, ADMIN, f"/credentials {person_id} code")
    assert re.fullmatch(r"\d{8}", secret_in(code.text)) and code.ephemeral_seconds == 60


async def test_credentials_are_for_activated_members_and_never_by_email(desk, clock):
    pending = await add(desk, clock, "Lea Berg lea@example.com")
    assert "for activated members only" in await said(desk, clock, ADMIN, f"/credentials {pending}")
    person_id = await activate(desk, clock)
    assert "only in the chat" in await said(desk, clock, "email:boss@example.com", f"credentials {person_id}")


async def test_a_chosen_weak_password_is_refused_with_reasons(desk, clock):
    person_id = await activate(desk, clock)
    reply = await said(desk, clock, ADMIN, f"/credentials {person_id} novak123")
    assert "too weak for Kim Novak" in reply
    assert "shorter than 10" in reply and "fewer than 3" in reply and "name or email" in reply
    [shown] = await ask(desk, clock, ADMIN, f"/credentials {person_id} Blue!Harbour42")
    assert "Chosen password" in shown.text and secret_in(shown.text) == "Blue!Harbour42"
    async with desk.store.uow() as uow:
        assert verify_secret("Blue!Harbour42", await uow.session.scalar(select(Credential.digest)))


async def test_bulk_credentials_come_as_a_csv_file_once(desk, clock):
    await make_group(desk.store, clock, "Hotline", kind="queue")
    people = [await activate(desk, clock),
              await activate(desk, clock, "=Evil Hacker evil@example.com phone=01 5550001", chat="telegram:3003"),
              await add(desk, clock, "Max Roth max@example.com")]
    for person_id in people:
        await ask(desk, clock, ADMIN, f"/member group {person_id} Hotline")
    summary, file = await ask(desk, clock, ADMIN, "/credentials Hotline")
    assert "for 2 members (Hotline)" in summary.text and "Max Roth (pending)" in summary.text
    assert summary.ephemeral_seconds is None and file.ephemeral_seconds == 600
    [attachment] = file.attachments
    assert attachment.mime == "text/csv" and attachment.name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(attachment.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "ID" and len(rows) == 3
    assert rows[2][1] == "'=Evil"  # CSV injection neutralised
    async with desk.store.uow() as uow:
        digests = {c.person_id: c.digest for c in await uow.session.scalars(select(Credential))}
    assert set(digests) == set(people[:2])
    for row in rows[1:]:
        assert verify_secret(row[-1], digests[int(row[0])])
        assert row[-1] not in await everything_stored(desk.store)
    [bulk] = await actions(desk.store, "credentials_bulk")
    assert bulk.actor == ADMIN and bulk.detail["count"] == 2 and bulk.detail["skipped"] == [people[2]]
    summary, _ = await ask(desk, clock, ADMIN, "/credentials all Blue!Harbour42")
    assert "for 2 members (all)" in summary.text


async def test_a_chosen_password_for_many_must_be_personal_to_none_of_them(desk, clock):
    await activate(desk, clock)
    assert "name or email" in await said(desk, clock, ADMIN, "/credentials all Novak!Harbour42")


# ---- locks and resets ---------------------------------------------------------------------------

async def lock_out(store, clock, person_id) -> None:
    async with store.uow() as uow:
        for _ in range(credentials.LOCK_AFTER):
            assert not await credentials.check_login(uow, person_id, "wrong-guess", clock.now())
        await uow.commit()


async def test_unlock_is_refused_until_the_member_tried_the_reset(desk, clock):
    person_id = await activate(desk, clock)
    password = secret_in((await ask(desk, clock, ADMIN, f"/credentials {person_id}"))[0].text)
    await lock_out(desk.store, clock, person_id)
    async with desk.store.uow() as uow:
        assert not await credentials.check_login(uow, person_id, password, clock.now())  # locked: even the right one
    assert "has not tried the self-service reset" in await said(desk, clock, ADMIN, f"/unlock {person_id}")
    assert "ask them to send" in await said(desk, clock, ADMIN, f"/credentials {person_id}")
    assert "sent a reset code to kim@example.com" in await said(desk, clock, "telegram:2002", "/reset")
    assert "is unlocked" in await said(desk, clock, ADMIN, f"/unlock {person_id}")
    async with desk.store.uow() as uow:
        credential = await uow.session.scalar(select(Credential))
        assert (credential.locked_at, credential.failed_attempts, credential.reset_requested_at) == (None, 0, None)
        assert await credentials.check_login(uow, person_id, password, clock.now())
    assert "not locked" in await said(desk, clock, ADMIN, f"/unlock {person_id}")
    assert [a.detail for a in await actions(desk.store, "login_failed")][-1]["locked"] is True
    assert len(await actions(desk.store, "credentials_unlocked")) == 1


async def test_a_right_login_does_not_pass_a_lock_taken_meanwhile(desk, clock, monkeypatch):
    person_id = await activate(desk, clock)
    password = secret_in((await ask(desk, clock, ADMIN, f"/credentials {person_id}"))[0].text)
    async with desk.store.uow() as uow:
        assert not await credentials.check_login(uow, person_id, "wrong-guess", clock.now())
        assert await credentials.check_login(uow, person_id, password, clock.now())
        credential = await uow.session.scalar(select(Credential))
        assert credential.failed_attempts == 0  # reset in SQL, and the loaded row follows
        verify = credentials.rules.verify_secret

        def lock_then_verify(secret, digest):  # as if the account locked while scrypt ran
            credential.locked_at = clock.now()  # written by the reset's own UPDATE (autoflush)
            return verify(secret, digest)

        monkeypatch.setattr(credentials.rules, "verify_secret", lock_then_verify)
        assert not await credentials.check_login(uow, person_id, password, clock.now())


async def test_a_member_resets_their_own_password_with_the_mailed_code(desk, clock):
    person_id = await activate(desk, clock)
    await ask(desk, clock, ADMIN, f"/credentials {person_id}")
    await lock_out(desk.store, clock, person_id)
    await ask(desk, clock, "telegram:2002", "/reset")
    async with desk.store.uow() as uow:
        mail = await uow.session.scalar(select(Outbox).where(Outbox.subject.contains("reset code")))
    code = mail.subject.split()[0]
    assert "send your new password" in await said(desk, clock, "telegram:2002", code)
    [weak] = await ask(desk, clock, "telegram:2002", "kim-secret")
    assert "too weak" in weak.text and weak.ephemeral_seconds == 60  # the typed password leaves the chat too
    [done] = await ask(desk, clock, "telegram:2002", "Blue!Harbour42")
    assert "new password is set" in done.text and done.ephemeral_seconds == 60
    async with desk.store.uow() as uow:
        assert await credentials.check_login(uow, person_id, "Blue!Harbour42", clock.now())
    assert "Blue!Harbour42" not in await everything_stored(desk.store)
    assert len(await actions(desk.store, "credential_reset")) == 1


async def test_a_reset_asked_by_email_counts_only_once_its_code_comes_back(desk, clock):
    person_id = await activate(desk, clock)
    await ask(desk, clock, ADMIN, f"/credentials {person_id}")
    await lock_out(desk.store, clock, person_id)
    assert "sent a reset code" in await said(desk, clock, "email:kim@example.com", "reset")
    assert "has not tried" in await said(desk, clock, ADMIN, f"/unlock {person_id}")  # a From: line proves nothing
    async with desk.store.uow() as uow:
        mail = await uow.session.scalar(select(Outbox).where(Outbox.subject.contains("reset code")))
    assert "new password" in await said(desk, clock, "email:kim@example.com", mail.subject.split()[0])
    assert "is unlocked" in await said(desk, clock, ADMIN, f"/unlock {person_id}")


async def test_reset_needs_an_activated_account_with_credentials(desk, clock):
    assert "no activated member account" in await said(desk, clock, "telegram:5", "/reset")
    await activate(desk, clock)
    assert "no credentials yet" in await said(desk, clock, "telegram:2002", "/reset")


async def test_the_credentials_file_opens_in_a_spreadsheet_with_names_codes_and_numbers_as_written(
        store, config, clock):
    """English or German, one rule: ';' and a BOM; a member enrolled by chat has their name in the file;
    codes and phone numbers come back from a type-guessing reader exactly as issued, with no quote shown."""

    async with store.uow() as uow:
        await ensure_owners(uow, [ADMIN], clock.now())
        await uow.commit()
    desk = Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                members.account_handlers(), members.group_handlers()), clock)
    await make_group(store, clock, "Team")
    kim = await activate(desk, clock, "Kim Novak kim@example.com phone=+49 30 1234567")
    await ask(desk, clock, ADMIN, f"/member group {kim} Team")
    assert "enrolled" in await said(desk, clock, ADMIN, "/enroll Team Lu Li lu@example.com")
    async with store.uow() as uow:
        mail = await uow.session.scalar(select(Outbox.text).where(Outbox.recipient == "lu@example.com"))
    payload = re.search(r"/start (inv-[A-Za-z0-9_-]+)", mail).group(1)
    assert "accepted" in await said(desk, clock, "telegram:4004", f"/start {payload}")
    _, file = await ask(desk, clock, ADMIN, "/credentials Team code", lang="en")
    [attachment] = file.attachments
    assert attachment.data.startswith(b"\xef\xbb\xbf")
    table = pandas.read_csv(io.BytesIO(attachment.data), sep=";", encoding="utf-8-sig")  # guesses types as Excel does
    assert list(table.columns)[:3] == ["ID", "First name", "Last name"]
    by_name = {row["Last name"]: row for _, row in table.iterrows()}
    assert set(by_name) == {"Novak", "Li"} and by_name["Li"]["First name"] == "Lu"
    assert by_name["Novak"]["Number"] == "+49 30 1234567"  # text, no quote in front, no number 49301234567
    async with store.uow() as uow:
        digests = {c.person_id: c.digest for c in await uow.session.scalars(select(Credential))}
    for _, row in table.iterrows():
        assert verify_secret(str(row["Credential"]), digests[int(row["ID"])])  # 8 digits, read as a number

