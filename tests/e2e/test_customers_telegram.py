"""The customer record through the real Telegram Application: a customer's own name, the admin's record."""
from __future__ import annotations

from tests.e2e.test_booking_telegram import ask, click, labels, practice, text_of  # noqa: F401
from tests.fakebotapi import fake_bot_api  # noqa: F401
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
    await ask(fake_bot_api, DONALD, "/name Donald Duck")  # the chat's name came first; this is a change
    listing = (await ask(fake_bot_api, ANNA, "/customers user2201"))[0]
    [button] = [label for label in labels(listing) if "User2201 Test" in label]
    card = text_of((await click(fake_bot_api, ANNA, listing, button))[0])
    number = card.split("#", 1)[1].split(":", 1)[0]
    assert card.startswith(f"Customer #{number}: User2201 Test")
    assert "Donald Duck" in await accept_first_change(fake_bot_api, '"User2201 Test" → "Donald Duck"')

    renamed = text_of((await ask(fake_bot_api, ANNA, f"/customer rename {number} Max Mustermann"))[0])
    assert 'is now called "Max Mustermann" (was "Donald Duck")' in renamed
    pending = text_of((await ask(fake_bot_api, DONALD, "/name Dagobert Duck"))[0])
    assert "Max Mustermann" not in pending  # the admin's correction stays in the admin's record
    assert "Dagobert Duck" in await accept_first_change(fake_bot_api, '"Max Mustermann" → "Dagobert Duck"')


async def test_a_customer_cannot_read_the_customer_records(fake_bot_api, practice):
    assert "not available to you" in text_of((await ask(fake_bot_api, DONALD, "/customers"))[0])
