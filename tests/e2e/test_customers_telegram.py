"""The customer record through the real Telegram Application: a customer's own name, the admin's record."""
from __future__ import annotations

from tests.e2e.test_booking_telegram import LUKAS_CHAT, labels, mailed_code, practice, text_of, verified  # noqa: F401
from tests.fakebotapi import fake_bot_api  # noqa: F401
from tests.helpers import ask, click, to_chat
from tests.smtp import smtp_server  # noqa: F401

ANNA = 1001  # the owner in the demo practice
DONALD = 2201  # the fake Bot API calls this user "User2201 Test"


async def accept_first_change(fake, expected: str) -> str:
    """Open the admin's list of customers' changes, check it, and press the first Accept button."""
    changes = (await ask(fake, ANNA, "/changes"))[0]
    assert expected in text_of(changes)
    accept = next(label for label in labels(changes) if label.startswith(("Accept", "✓")))
    return text_of((await click(fake, ANNA, changes, accept))[0])


async def test_a_customers_own_name_waits_for_the_admin_who_also_fixes_pseudonyms(fake_bot_api, practice):
    # Telegram's profile name is only a stand-in: the first name the customer gives replaces it.
    assert "Thank you, Donald Duck." in text_of((await ask(fake_bot_api, DONALD, "/name Donald Duck"))[0])
    listing = (await ask(fake_bot_api, ANNA, "/customers donald"))[0]
    [button] = [label for label in labels(listing) if "Donald Duck" in label]
    card = text_of((await click(fake_bot_api, ANNA, listing, button))[0])
    number = card.split("#", 1)[1].split(":", 1)[0]
    assert card.startswith(f"Customer #{number}: Donald Duck")

    renamed = text_of((await ask(fake_bot_api, ANNA, f"/customer rename {number} Max Mustermann"))[0])
    assert 'is now called "Max Mustermann" (was "Donald Duck")' in renamed
    pending = text_of((await ask(fake_bot_api, DONALD, "/name Dagobert Duck"))[0])
    assert "Max Mustermann" not in pending  # the admin's correction stays in the admin's record
    assert "Dagobert Duck" in await accept_first_change(fake_bot_api, '"Max Mustermann" → "Dagobert Duck"')
    later = text_of((await ask(fake_bot_api, DONALD, "/name User2201 Test"))[0])  # a change, even to that name
    assert "passed your name" in later


async def test_staff_notices_name_the_customer_by_the_name_they_gave(fake_bot_api, smtp_server, practice):  # noqa: F811
    assert "Thank you, Ruth Weiß." in text_of((await ask(fake_bot_api, DONALD, "/name Ruth Weiß"))[0])
    await verified(fake_bot_api, practice, smtp_server, DONALD, "ruth@example.com")
    assert "I am holding" in text_of((await ask(fake_bot_api, DONALD, "/book Massage 2026-12-08 10:00 Lukas Huber"))[0])
    await ask(fake_bot_api, DONALD, await mailed_code(practice, smtp_server, "ruth@example.com"))
    await practice.drain()
    [note] = await fake_bot_api.wait_for("sendMessage", to_chat(LUKAS_CHAT))
    assert "Kunde: Ruth Weiß" in note.params["text"] and "User2201" not in note.params["text"]


async def test_a_customer_cannot_read_the_customer_records(fake_bot_api, practice):
    assert "not available to you" in text_of((await ask(fake_bot_api, DONALD, "/customers"))[0])
