"""Ticket rules without a store: routing, numbers, subjects, references, ages."""
from datetime import datetime, timezone

import pytest

from handlers.messages import MailMeta
from handlers.rules import mailthread
from handlers.tickets import display, intake, records


def test_the_composition_root_routes_support_words_and_email_to_tickets():
    from bot.app import build_handlers

    handlers = build_handlers()
    words = {name: c for c in handlers.commands for name in (c.word, *c.aliases)}
    for word in ("tickets", "ticket", "reply", "note", "close"):
        assert words[word].run.__module__ in ("handlers.tickets.words", "handlers.tickets.display"), word
    assert handlers.fallbacks["email"] is intake.on_mail


@pytest.mark.parametrize("typed, number", [("12", 12), ("#12", 12), ("T-12", 12), ("#t-12", 12), ("[#T-12]", 12),
                                           ("12a", None), ("", None), ("-3", None)])
def test_ticket_numbers_are_read_in_any_usual_form(typed, number):
    assert records.parse_ticket_id(typed) == number


def test_subjects_lose_tags_and_reply_prefixes():
    assert mailthread.topic("Re: AW: Fwd:  Termin [#T-7] morgen") == "Termin morgen"
    assert records.tagged_id("AW: Re: Termin [#t-7]") == 7
    assert records.tagged_id("Termin #T-7") is None


def test_references_keep_the_root_and_the_latest():
    chain = [f"<{n}@x>" for n in range(30)]
    kept = mailthread.trimmed(chain)
    assert len(kept) == mailthread.MAX_REFERENCES and kept[0] == "<0@x>" and kept[-1] == "<29@x>"


def test_an_answer_references_the_parents_chain_then_the_parent():
    meta = MailMeta(message_id="c@x", in_reply_to="<b@x>", references=("<a@x>", "<b@x>"))
    assert mailthread.chain_after(meta) == ["<a@x>", "<b@x>", "<c@x>"]
    assert mailthread.thread_refs(meta) == ["<b@x>", "<a@x>"]


def test_age_is_said_in_the_readers_language():
    then = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    assert display.age_text(now, then, "en") == "3 hours ago"
    assert display.age_text(now, then, "de") == "vor 3 Stunden"
