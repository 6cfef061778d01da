"""The router against a real store: roles, buttons, conversations, languages, failures."""
from sqlalchemy import func, select

from handlers import admin, identity, welcome
from handlers.bootstrap import ensure_owners
from handlers.registry import Command, Handlers
from handlers.router import Desk
from storage.models import Address, Audit, Conversation, Person
from tests.conftest import inbound


def make_desk(store, config, clock, *extra: Handlers) -> Desk:
    parts = (welcome.handlers(), identity.handlers(), admin.handlers(), *extra)
    return Desk(store, config, Handlers.combine(*parts), clock)


async def make_owner(store, clock, address="telegram:1001"):
    async with store.uow() as uow:
        await ensure_owners(uow, [address], clock.now())
        await uow.commit()


async def test_customer_typing_an_admin_word_is_refused_and_logged(store, config, clock):
    desk = make_desk(store, config, clock)
    replies = await desk.handle(inbound("telegram:5", "/audit", clock=clock))
    assert replies[0].template == "not_allowed" and '"audit"' in replies[0].text
    async with store.uow() as uow:
        denied = (await uow.session.scalars(select(Audit).where(Audit.action == "denied"))).all()
    assert [(d.actor, d.subject) for d in denied] == [("telegram:5", "audit")]


async def test_owner_reads_the_audit_log_and_sees_the_refusal(store, config, clock):
    await make_owner(store, clock)
    desk = make_desk(store, config, clock)
    await desk.handle(inbound("telegram:5", "/audit", clock=clock))
    text = (await desk.handle(inbound("telegram:1001", "/audit 5", clock=clock)))[0].text
    assert "telegram:5 via telegram · denied · audit" in text


async def test_help_shows_only_what_the_role_may_use(store, config, clock):
    await make_owner(store, clock)
    desk = make_desk(store, config, clock)
    customer = (await desk.handle(inbound("telegram:5", "/help", clock=clock)))[0].text
    owner = (await desk.handle(inbound("telegram:1001", "/help", clock=clock)))[0].text
    assert "/audit" not in customer and "/email" in customer
    assert "/audit" in owner and "Administration" in owner


async def test_unknown_words_and_stray_digits_get_a_hint(store, config, clock):
    desk = make_desk(store, config, clock)
    [unknown] = await desk.handle(inbound("telegram:5", "frobnicate now", clock=clock))
    assert unknown.template == "unknown" and '"frobnicate"' in unknown.text
    assert [r.template for r in await desk.handle(inbound("telegram:5", "123456", clock=clock))] == ["code_none"]
    [empty] = await desk.handle(inbound("telegram:5", "", clock=clock))
    assert empty.template == "unknown_empty" and "/help" in empty.text


async def test_a_button_runs_its_command_once_known_and_expires_for_others(store, config, clock):
    desk = make_desk(store, config, clock)
    keyboard = (await desk.handle(inbound("telegram:5", "/language", clock=clock)))[0].choices
    german = next(c for c in keyboard if c.command == "language de")
    assert len(german.key.encode()) <= 64
    [chosen] = await desk.handle(inbound("telegram:5", choice=german.key, clock=clock))
    assert chosen.template == "language_set" and "Deutsch" in chosen.text
    # someone else's button (or a forged key) does nothing but say so
    other = await desk.handle(inbound("telegram:6", choice=german.key, clock=clock))
    assert [r.template for r in other] == ["choice_expired"]


async def test_a_conversation_continues_in_a_new_desk_after_a_restart(store, config, clock):
    await make_desk(store, config, clock).handle(inbound("telegram:5", "/email", clock=clock))
    restarted = make_desk(store, config, clock)
    [sent] = await restarted.handle(inbound("telegram:5", "k@example.com", clock=clock))
    assert sent.template == "code_sent" and "k@example.com" in sent.text


async def test_language_follows_choice_then_client_then_business(store, config, clock):
    desk = make_desk(store, config, clock)
    assert "Willkommen" in (await desk.handle(inbound("telegram:5", "/start", clock=clock, lang="de-AT")))[0].text
    assert "Welcome" in (await desk.handle(inbound("telegram:6", "/start", clock=clock, lang="fr")))[0].text
    await desk.handle(inbound("telegram:6", "/language de", clock=clock, lang="fr"))
    assert "Willkommen" in (await desk.handle(inbound("telegram:6", "/start", clock=clock, lang="en")))[0].text


async def test_a_failing_handler_gets_a_friendly_reply_and_changes_nothing(store, config, clock):
    async def explode(ctx, args):
        ctx.person.name = "changed"
        raise RuntimeError("boom")

    desk = make_desk(store, config, clock, Handlers(commands=[Command("explode", explode)]))
    await desk.handle(inbound("telegram:5", "/start", clock=clock))
    replies = await desk.handle(inbound("telegram:5", "/explode", clock=clock))
    assert [r.template for r in replies] == ["error"]
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Person).where(Person.name == "changed")) == 0


async def test_bad_audit_count_is_explained(store, config, clock):
    await make_owner(store, clock)
    desk = make_desk(store, config, clock)
    [refused] = await desk.handle(inbound("telegram:1001", "/audit -3", clock=clock))
    assert refused.template == "audit_bad_count" and '"-3"' in refused.text


async def test_a_refusal_undoes_the_handlers_writes_but_keeps_the_callers(store, config, clock):
    from handlers.context import Refusal

    async def half_done(ctx, args):
        ctx.person.name = "half"
        await ctx.session.flush()
        raise Refusal("language_unknown", value="xx")

    desk = make_desk(store, config, clock, Handlers(commands=[Command("half", half_done)]))
    async with store.uow() as uow:
        uow.session.add(Audit(at=clock.now(), actor="intake", channel="email", action="mail_received", detail={}))
        replies = await desk.handle_in(uow, inbound("telegram:5", "/half", clock=clock))
        await uow.commit()
    assert replies[0].template == "language_unknown" and '"xx"' in replies[0].text
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Person).where(Person.name == "half")) == 0
        received = select(func.count()).select_from(Audit).where(Audit.action == "mail_received")
        assert await uow.session.scalar(received) == 1


async def test_a_refusal_in_the_callers_unit_of_work_forgets_a_plain_update_of_the_speaker(store, config, clock):
    from handlers.context import Refusal

    async def switch_then_refuse(ctx, args):
        await ctx.update_person(language="de")  # a plain UPDATE: the ORM does not see it as a change
        raise Refusal("language_unknown", value="xx")

    desk = make_desk(store, config, clock, Handlers(commands=[Command("switch", switch_then_refuse)]))
    async with store.uow() as uow:
        [refused] = await desk.handle_in(uow, inbound("telegram:5", "/switch", clock=clock))
        await uow.commit()
    assert '"xx"' in refused.text  # in English, as the person still reads: not in the undone German
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Person).where(Person.language == "de")) == 0


async def test_a_refused_message_leaves_no_half_written_rows_and_is_still_answered(store, config, clock):
    from handlers.context import Refusal

    async def half_done(ctx, args):
        ctx.person.name = "half"
        await ctx.audit("half_written")
        await ctx.start_flow("half", "waiting")
        await ctx.session.flush()
        raise Refusal("language_unknown", value=args)

    desk = make_desk(store, config, clock, Handlers(commands=[Command("half", half_done)]))
    await desk.handle(inbound("telegram:5", "/language de", clock=clock))
    [refused] = await desk.handle(inbound("telegram:5", "/half xx", clock=clock))
    # A first message from someone new, refused: the person made for it is made again for the answer.
    [stranger] = await desk.handle(inbound("telegram:6", "/half yy", clock=clock, lang="en"))
    assert refused.template == stranger.template == "language_unknown"
    assert "„xx“" in refused.text and "Sprache" in refused.text  # in the language the first message set
    assert '"yy"' in stranger.text
    async with store.uow() as uow:
        count = select(func.count()).select_from
        assert await uow.session.scalar(count(Person).where(Person.name == "half")) == 0
        assert await uow.session.scalar(count(Audit).where(Audit.action == "half_written")) == 0
        assert await uow.session.scalar(count(Conversation)) == 0
        assert await uow.session.scalar(count(Address).where(Address.address == "telegram:6")) == 1
        assert await uow.session.scalar(count(Audit).where(Audit.action == "language_set")) == 1


async def test_text_typed_while_a_question_waits_answers_it_and_a_slash_word_still_runs(store, config, clock):
    desk = make_desk(store, config, clock)
    await desk.handle(inbound("telegram:5", "/email", clock=clock))
    # "help me" would be the help word; here it is the answer to "which address?"
    [invalid] = await desk.handle(inbound("telegram:5", "help me", clock=clock))
    assert invalid.template == "email_invalid" and '"help me"' in invalid.text
    [help_] = await desk.handle(inbound("telegram:5", "/help", clock=clock))
    assert help_.template == "help" and "/email" in help_.text
    [sent] = await desk.handle(inbound("telegram:5", "k@example.com", clock=clock))
    assert sent.template == "code_sent" and "k@example.com" in sent.text


async def test_a_new_sender_writing_several_times_at_once_becomes_one_person(store, config, clock):
    """On PostgreSQL these transactions really overlap: the address's unique key decides who made the person."""
    import asyncio

    desk = make_desk(store, config, clock)
    replies = await asyncio.gather(*[desk.handle(inbound("telegram:77", "/language de", clock=clock))
                                     for _ in range(8)])
    assert all(reply[0].template == "language_set" and "Deutsch" in reply[0].text for reply in replies)
    async with store.uow() as uow:
        people = (await uow.session.scalars(select(Person))).all()
        changes = await uow.session.scalar(
            select(func.count()).select_from(Audit).where(Audit.action == "language_set"))
    assert len(people) == 1 and people[0].language == "de"  # no second person, none left without an address
    assert changes == 8


async def test_by_email_only_a_well_formed_command_line_is_a_command(store, config, clock):
    from bot.app import build_handlers

    desk = Desk(store, config, build_handlers(), clock)
    commands = ["help", "LANGUAGE de", "cancel 12", "CANCEL 12 ill", "bookings", "book", "confirm 123456", "123456",
                "move 3 2026-12-08 10:00", "email kim@example.com", "stornieren 4"]
    sentences = ["Hilfe bei meiner Buchung", "Book a table?", "Cancel my appointment please", "Termine im Januar",
                 "Code doesn't work", "Reset my password please", "help\nI cannot log in", "language barrier",
                 "Cancel that, I found the receipt", "", "email me back please"]
    async with store.uow() as uow:
        assert [text for text in commands if not await desk.is_command(uow, text)] == []
        assert [text for text in sentences if await desk.is_command(uow, text)] == []
