"""Email verification through the router against a real store (SQLite and PostgreSQL)."""
from sqlalchemy import func, select

from handlers import identity, welcome
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import Address, Audit, Outbox
from tests.conftest import inbound


def make_desk(store, config, clock) -> Desk:
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers()), clock)


async def last_code(store) -> str:
    async with store.uow() as uow:
        subject = await uow.session.scalar(select(Outbox.subject).order_by(Outbox.id.desc()).limit(1))
    return subject.split()[0]


async def test_email_code_verifies_the_address(store, config, clock):
    desk = make_desk(store, config, clock)
    replies = await desk.handle(inbound("telegram:7", "/email Kim@Example.COM", clock=clock))
    assert "kim@example.com" in replies[0].text  # one spelling per mailbox: the whole address in lower case
    code = await last_code(store)
    replies = await desk.handle(inbound("telegram:7", code, clock=clock))
    assert "confirmed" in replies[0].text
    async with store.uow() as uow:
        row = await uow.session.scalar(select(Address).where(Address.address == "email:kim@example.com"))
        assert row.verified
        telegram = await uow.session.scalar(select(Address).where(Address.address == "telegram:7"))
        assert telegram.person_id == row.person_id


async def test_wrong_code_six_times_voids_the_code(store, config, clock):
    desk = make_desk(store, config, clock)
    await desk.handle(inbound("telegram:8", "/email a@example.com", clock=clock))
    code = await last_code(store)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [(await desk.handle(inbound("telegram:8", f"/confirm {wrong}", clock=clock)))[0].text for _ in range(6)]
    assert "4 tries left" in answers[0]
    assert "1 try left" in answers[3]
    assert "last try" in answers[4]
    assert "no code waiting" in answers[5]
    # the right code no longer works either
    assert "no code waiting" in (await desk.handle(inbound("telegram:8", code, clock=clock)))[0].text
    async with store.uow() as uow:
        wrong = await uow.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "code_wrong"))
        assert wrong == 5


async def test_expired_code_is_refused(store, config, clock):
    desk = make_desk(store, config, clock)
    await desk.handle(inbound("telegram:9", "/email b@example.com", clock=clock))
    code = await last_code(store)
    clock.advance(minutes=16)
    assert "no code waiting" in (await desk.handle(inbound("telegram:9", code, clock=clock)))[0].text


async def test_issuing_codes_is_rate_limited(store, config, clock):
    desk = make_desk(store, config, clock)
    for _ in range(5):
        await desk.handle(inbound("telegram:10", "/email c@example.com", clock=clock))
        clock.advance(minutes=1)
    replies = await desk.handle(inbound("telegram:10", "/email c@example.com", clock=clock))
    assert "Too many codes" in replies[0].text
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Outbox)) == 5


async def test_the_code_limit_holds_when_requests_arrive_at_once(store, config, clock):
    """On PostgreSQL these transactions overlap: counting first and inserting after would let more through."""
    import asyncio

    desk = make_desk(store, config, clock)
    await desk.handle(inbound("telegram:12", "/help", clock=clock))  # the person exists before the race
    replies = await asyncio.gather(*[desk.handle(inbound("telegram:12", f"/email r{n}@example.com", clock=clock))
                                     for n in range(12)])
    limited = sum("Too many codes" in reply[0].text for reply in replies)
    async with store.uow() as uow:
        mailed = await uow.session.scalar(select(func.count()).select_from(Outbox))
    assert (mailed, limited) == (config.code_max_per_hour, 12 - config.code_max_per_hour)


async def test_email_without_address_waits_for_it_in_the_conversation(store, config, clock):
    desk = make_desk(store, config, clock)
    assert "send me your email" in (await desk.handle(inbound("telegram:11", "/email", clock=clock)))[0].text
    assert "d@example.com" in (await desk.handle(inbound("telegram:11", "d@example.com", clock=clock)))[0].text


async def test_bad_address_and_bad_code_get_clear_messages(store, config, clock):
    desk = make_desk(store, config, clock)
    [invalid] = await desk.handle(inbound("telegram:12", "/email nope", clock=clock))
    assert "does not look like an email" in invalid.text
    assert "is not a code" in (await desk.handle(inbound("telegram:12", "/confirm 12ab", clock=clock)))[0].text


async def test_wrong_tries_count_against_every_pending_code_so_fresh_codes_buy_no_extra_guesses(store, config, clock):
    """A typed code is checked against all pending codes; each miss counts against all of them."""
    from handlers.rules import codes
    from storage.models import Code

    desk = make_desk(store, config, clock)
    await desk.handle(inbound("telegram:13", "/email e@example.com", clock=clock))
    email_code = await last_code(store)
    other_code = f"{(int(email_code) + 1) % 1_000_000:06d}"
    wrong = f"{(int(email_code) + 2) % 1_000_000:06d}"

    async def attempt(code: str) -> str:
        return " ".join(r.text for r in await desk.handle(inbound("telegram:13", f"/confirm {code}", clock=clock)))

    for _ in range(3):
        await attempt(wrong)
    clock.advance(minutes=1)
    async with store.uow() as uow:  # a code of another kind, asked for after the misses
        uow.session.add(Code(
            address="telegram:13", purpose=identity.EMAIL_COMMAND, target="help", created_at=clock.now(),
            expires_at=clock.now() + config.code_ttl, attempts=0,
            digest=codes.digest(config.secret_key, identity.EMAIL_COMMAND, "help", other_code)))
        await uow.commit()

    assert "1 try left" in await attempt(wrong)
    fifth = await attempt(wrong)  # the email code is used up; the other has had two misses
    assert "last try" in fifth and "3 tries left" in fifth
    for _ in range(3):
        await attempt(wrong)
    assert "no code waiting" in await attempt(email_code)
    assert "no code waiting" in await attempt(other_code)
    async with store.uow() as uow:
        attempts = (await uow.session.scalars(select(Code.attempts).order_by(Code.id))).all()
    assert attempts == [config.code_max_attempts, config.code_max_attempts]
