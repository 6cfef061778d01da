"""How words leave: the language someone is written in, and where a person is told (SQLite and PostgreSQL)."""
from dataclasses import replace

from sqlalchemy import select

from handlers.registry import Command, Handlers
from handlers.router import Desk
from handlers.speaking import reply_language
from storage.models import Address, Business, Outbox, Person
from tests.conftest import inbound


def test_the_reply_language_is_the_persons_then_the_business_then_the_configured_default():
    business = Business(id=1, name="Salon", timezone="Europe/Vienna", language="en")
    assert reply_language("de", business, "en") == "de"
    assert reply_language(None, business, "de") == "en"
    # No business yet: the configured default, not English.
    assert reply_language(None, None, "de") == "de"
    assert reply_language("xx", None, "de") == "en"  # an unknown choice still renders in a language we have


async def people(store, clock) -> dict[str, int]:
    """Ann reads Telegram (and has an email), Ben only a confirmed email, Cem only an unconfirmed one."""
    ids = {}
    async with store.uow() as uow:
        for name, addresses in {"ann": [("telegram:71", True), ("email:ann@example.com", True)],
                                "ben": [("email:ben@example.com", True)],
                                "cem": [("email:cem@example.com", False)]}.items():
            person = Person(name=name, language="de" if name == "ben" else None, created_at=clock.now())
            uow.session.add(person)
            await uow.session.flush()
            for address, verified in addresses:
                uow.session.add(Address(address=address, kind=address.split(":")[0], person_id=person.id,
                                        verified=verified, created_at=clock.now()))
            ids[name] = person.id
        await uow.commit()
    return ids


async def test_a_person_is_told_in_their_chat_else_at_a_confirmed_email_and_never_an_unconfirmed_one(
        store, config, clock):
    ids = await people(store, clock)
    desk = Desk(store, replace(config, default_language="de"), Handlers(), clock)
    async with store.uow() as uow:
        ctx = await desk._context(uow, inbound("telegram:9", clock=clock))
        told = {name: await ctx.tell(person_id, "not_allowed", word="x") for name, person_id in ids.items()}
        chat_only = await ctx.tell(ids["ben"], "not_allowed", by_mail=False, word="x")
        await uow.commit()
    assert told == {"ann": True, "ben": True, "cem": False} and chat_only is False
    async with store.uow() as uow:
        rows = (await uow.session.scalars(select(Outbox).order_by(Outbox.id))).all()
    assert [(r.channel, r.recipient) for r in rows] == [("telegram", "telegram:71"), ("email", "ben@example.com")]
    german = "nicht"  # templates/de/not_allowed.j2; no business yet: the configured default, German
    assert all(german in r.text for r in rows), [r.text for r in rows]
    mail = rows[1]
    assert mail.headers["Auto-Submitted"] == "auto-generated" and mail.headers["Message-ID"] == mail.message_id
    assert mail.message_id.endswith(f"@{config.mail_domain}>")


async def test_an_email_command_waits_for_the_registered_round_trip_and_never_runs_without_one(store, config, clock):
    ran = []

    async def change(ctx, args):
        ran.append(args)
        return [ctx.say("unknown_empty")]

    asked = []

    async def round_trip(ctx, line):
        asked.append(line)
        return []

    words = Handlers(commands=[Command("change", change)])
    with_hook = Desk(store, config, Handlers.combine(words, Handlers(round_trip=round_trip)), clock)
    await with_hook.handle(inbound("email:kim@example.com", "CHANGE it", clock=clock))
    assert asked == ["change it"] and ran == []
    without = Desk(store, config, words, clock)
    replies = await without.handle(inbound("email:kim@example.com", "CHANGE it", clock=clock))
    assert ran == [] and '"change" is not available to you' in replies[0].text
