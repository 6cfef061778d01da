"""Outbox rules without a server: SMTP URLs, backoff, Message-IDs."""
from datetime import timedelta

import pytest

from bot.mail.smtp import build_email, parse_smtp_url
from bot.outbox import backoff
from tests.helpers import make_row
from tests.smtp import SmtpServer, smtp_server  # noqa: F401


def test_smtp_urls_are_parsed_with_default_ports():
    plain = parse_smtp_url("smtp://us%40er:p%40ss@mail.example.com")
    assert (plain.host, plain.port, plain.implicit_tls, plain.username, plain.password) == (
        "mail.example.com", 25, False, "us@er", "p@ss")
    secure = parse_smtp_url("smtps://mail.example.com")
    assert (secure.port, secure.implicit_tls, secure.username) == (465, True, None)
    assert parse_smtp_url("smtp://h:2525").port == 2525
    with pytest.raises(ValueError, match="FRONTDESK_SMTP_URL"):
        parse_smtp_url("http://mail.example.com")


def test_backoff_doubles_up_to_an_hour():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(20) == timedelta(hours=1)


def test_build_email_adds_a_message_id_when_the_row_has_none(clock):
    msg = build_email(make_row(clock, headers={}), "desk@example.com")
    assert msg["Message-ID"].endswith("@example.com>")
    assert (msg["Auto-Submitted"], msg["X-Auto-Response-Suppress"]) == ("auto-generated", "All")
    assert msg.get_content_type() == "text/plain"
