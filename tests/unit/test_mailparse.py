"""Reading mail without a store: charsets, quotes, loops, ids, attachments, subjects, IMAP words."""
from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis.strategies import from_regex

from bot.mail.imap import batches, fetched_records, parse_imap_url
from bot.mail.intake import email_choice
from bot.mail.parse import Limits, clean, is_synthetic, parse, strip_quotes
from bot.mail.parse.headers import PLAIN_FROM, POLICY, from_pair, header
from handlers.messages import Choice
from handlers.rules.mailthread import reply_subject, topic
from tests.helpers import raw_mail

CORPUS = Path(__file__).parents[3] / "shared" / "data" / "email-corpus"


def test_an_iso_8859_1_mail_is_decoded_in_subject_body_and_name():
    raw = ("From: =?ISO-8859-1?Q?J=FCrgen?= <j@example.org>\r\nSubject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n"
           "Content-Type: text/plain; charset=ISO-8859-1\r\n\r\nSch\xf6ne Gr\xfc\xdfe\r\n").encode("latin-1")
    parsed = parse(raw)
    assert (parsed.display_name, parsed.subject, parsed.body) == ("Jürgen", "Grüße", "Schöne Grüße")


@pytest.mark.parametrize("declared, data, expected", [
    ("x-klingon", "Grüße".encode(), "Grüße"),  # unknown charset: UTF-8 fits
    ("utf-8", "Grüße".encode("latin-1"), "Grüße"),  # wrong charset: falls back to Windows-1252
    ("us-ascii", "Grüße".encode(), "Grüße"),  # 8-bit text declared ASCII
    ("base64", b"plain words", "plain words"),  # a codec that is no text encoding
])
def test_unknown_and_wrong_charsets_fall_back_without_raising(declared, data, expected):
    raw = b"From: k@example.org\r\nContent-Type: text/plain; charset=" + declared.encode() + b"\r\n\r\n" + data
    assert parse(raw).body == expected


def test_an_html_only_mail_becomes_text_and_its_blockquotes_are_quotes():
    html = ("<html><head><style>p {color: red}</style></head><body><div>BOOKINGS</div><p>Thanks &amp; bye</p>"
            "<blockquote><p>CANCEL 12</p></blockquote></body></html>")
    msg = EmailMessage()
    msg["From"] = "k@example.org"
    msg.set_content(html, subtype="html")
    parsed = parse(msg.as_bytes())
    assert parsed.body == "BOOKINGS\n\nThanks & bye\n\n> CANCEL 12"
    assert parsed.command_text == "BOOKINGS\n\nThanks & bye"


@pytest.mark.parametrize("reply", [
    "CONFIRM 123456\n\n> reply with CONFIRM 999999\n> to run: CANCEL 3",
    "CONFIRM 123456\n\nOn Mon, 7 Dec 2026 at 08:00, Physio <desk@physio.example> wrote:\n> CANCEL 3",
    "CONFIRM 123456\n\nOn Mon, 7 Dec 2026 at 08:00, Physio am Park\n<desk@physio.example> wrote:\n> CANCEL 3",
    "CONFIRM 123456\n\nAm 07.12.2026 um 08:00 schrieb Physio am Park <desk@physio.example>:\n> CANCEL 3",
    "CONFIRM 123456\n\n-----Original Message-----\nFrom: Physio\nSent: Monday\nCANCEL 3",
    "CONFIRM 123456\n\n________________________________\nVon: Physio\nGesendet: Montag\nCANCEL 3",
    "CONFIRM 123456\n\nVon: Physio am Park <desk@physio.example>\nGesendet: Montag, 7. Dezember 2026\nCANCEL 3",
    "CONFIRM 123456\n-- \nKim Ott\nCANCEL 3",
    "CONFIRM 123456\n\nSent from my iPhone\n\nCANCEL 3",
])
def test_quotes_and_signatures_are_stripped_for_commands(reply):
    assert strip_quotes(reply) == "CONFIRM 123456"
    assert "CANCEL 3" in parse(raw_mail(reply)).body  # the whole text stays for tickets


def test_a_bottom_posted_answer_survives_quote_stripping():
    assert strip_quotes("On Mon, Kim wrote:\n> question?\n\nCONFIRM 123456") == "CONFIRM 123456"


@pytest.mark.parametrize("name, value", [
    ("Auto-Submitted", "auto-replied"), ("Auto-Submitted", "auto-generated"), ("Precedence", "bulk"),
    ("Precedence", "junk"), ("Precedence", "list"), ("X-Auto-Response-Suppress", "All"),
    ("List-Id", "<news.example.org>"), ("List-Unsubscribe", "<mailto:leave@example.org>"), ("Return-Path", "<>"),
])
def test_loop_markers_make_a_mail_automatic(name, value):
    assert parse(raw_mail(headers={name: value})).automatic


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@mx.example.org", "postmaster@example.org", "no-reply@shop.example", "noreply@shop.example",
    "do-not-reply@shop.example", "Mail Delivery <>",
])
def test_robot_senders_are_automatic(sender):
    assert parse(raw_mail(sender=sender)).automatic


def test_a_person_writing_is_not_automatic():
    assert not parse(raw_mail(headers={"Auto-Submitted": "no", "Precedence": "first-class",
                                        "Return-Path": "<kim@example.org>"})).automatic


def test_a_delivery_report_is_automatic():
    raw = (b"From: mx@example.org\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B--\r\n")
    assert parse(raw).automatic


def test_a_mail_without_message_id_gets_a_stable_synthetic_id():
    first, again, other = parse(raw_mail()), parse(raw_mail()), parse(raw_mail("Other"))
    assert first.message_id == again.message_id != other.message_id
    assert is_synthetic(first.message_id) and len(first.message_id) <= 255


def test_an_overlong_message_id_is_hashed_to_fit():
    parsed = parse(raw_mail(headers={"Message-ID": f"<{'x' * 300}@example.org>"}))
    assert is_synthetic(parsed.message_id) and len(parsed.message_id) <= 255


def test_threading_headers_are_read():
    parsed = parse(raw_mail(headers={"Message-ID": "<c@x>", "In-Reply-To": "<b@x>", "References": "<a@x>\r\n <b@x>"}))
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == ("<c@x>", "<b@x>", ("<a@x>", "<b@x>"))


@pytest.mark.parametrize("sender, expected", [
    ("Kim <Kim.Ott@Example.ORG>", "kim.ott@example.org"), ("kim@example.org (Kim)", "kim@example.org"),
    ("undisclosed-recipients:;", None), ("foo", None), ("", None),
])
def test_the_sender_address_is_in_lower_case_or_none(sender, expected):
    assert parse(raw_mail(sender=sender)).sender == expected


def from_header(value: str):
    return message_from_bytes(f"From: {value}\r\nSubject: x\r\n\r\nbody".encode(), policy=POLICY)


@settings(max_examples=400, deadline=None)
@given(from_regex(PLAIN_FROM, fullmatch=True))
def test_a_plain_from_is_read_as_the_full_header_parser_reads_it(value):
    msg = from_header(value)
    assert PLAIN_FROM.fullmatch(value)
    assert from_pair(msg) == parseaddr(header(msg, "From"))


@pytest.mark.parametrize("value", [
    "J. Smith <j@example.org>", '"Doe, John" <j@example.org>', "a..b@example.org", ".a@example.org",
    "kim@example.org (Kim)", "Kim <kim@example.org>, Eve <eve@example.org>", "=?utf-8?q?eve@evil.org?= <k@example.org>",
    "Kim  Ott <k@example.org>", "Kim <k@localhost>", "Kim<k@example.org>", "Jürgen <j@example.org>",
    "Kim <k@example.org", "group: k@example.org;", "=?utf-8?q?a?=@example.org", "Kim <=?utf-8?q?a?=@example.org>",
])
def test_any_other_from_takes_the_full_header_parser(value):
    msg = from_header(value)
    assert not PLAIN_FROM.fullmatch(value)
    assert from_pair(msg) == parseaddr(header(msg, "From"))


def test_nul_bytes_and_lone_surrogates_are_cleaned():
    assert clean("a\x00b\udcfc") == "ab?"
    parsed = parse(b"From: k@example.org\r\nSubject: x\x00y\r\n\r\nbody\x00text")
    assert "\x00" not in parsed.subject + parsed.body


def test_attachments_are_kept_up_to_the_limits_and_the_rest_refused():
    msg = EmailMessage()
    msg["From"] = "k@example.org"
    msg.set_content("see attached")
    for name, size in (("a.pdf", 40), ("b.pdf", 120), ("c.pdf", 50), ("d.pdf", 30)):
        msg.add_attachment(b"x" * size, maintype="application", subtype="pdf", filename=name)
    parsed = parse(msg.as_bytes(), Limits(attachment=100, total=100))
    assert [(a.name, len(a.data)) for a in parsed.attachments] == [("a.pdf", 40), ("c.pdf", 50)]
    assert [(r.name, r.size) for r in parsed.refused] == [("b.pdf", 120), ("d.pdf", 30)]
    assert parsed.body == "see attached"


def test_every_corpus_message_parses():
    if not CORPUS.is_dir():
        pytest.skip(f"the email corpus is not at {CORPUS}")
    for path in sorted(CORPUS.glob("msg_*.txt")):
        parsed = parse(path.read_bytes())
        assert parsed.message_id.startswith("<"), path.name


def test_subjects_lose_prefixes_and_tags_for_commands_and_keep_tags_in_replies():
    assert topic("AW: Re: Fwd: [#T-12] cancel 4") == "cancel 4"
    assert reply_subject("AW: Re: [#T-12] Parking", "your message") == "Re: [#T-12] Parking"
    assert reply_subject("", "your message") == "Re: your message"


def test_choices_become_lines_with_the_word_in_capitals():
    assert email_choice(Choice("10:00", "book Massage at Linz on 2026-12-08 at 10:00")) == {
        "label": "10:00", "line": "BOOK Massage at Linz on 2026-12-08 at 10:00"}


def test_imap_urls_are_read_with_encoded_credentials_and_defaults():
    target = parse_imap_url("imap://desk%40example.com:p%C3%A4ss@mail.example.com/Support%20Mail?move_to=Done")
    assert (target.host, target.port, target.implicit_tls, target.username, target.password) == (
        "mail.example.com", 143, False, "desk@example.com", "päss")
    assert (target.mailbox, target.move_to) == ("Support Mail", "Done")
    secure = parse_imap_url("imaps://u:p@mail.example.com")
    assert (secure.port, secure.implicit_tls, secure.mailbox, secure.move_to) == (993, True, "INBOX", None)
    with pytest.raises(ValueError, match="FRONTDESK_IMAP_URL"):
        parse_imap_url("http://mail.example.com")


def test_fetch_responses_are_grouped_whatever_the_item_order():
    lines = [b"1 FETCH (UID 101 BODY[] {3}", bytearray(b"abc"), b")",
             b"2 FETCH (BODY[] {2}", bytearray(b"de"), b" UID 102)", b"3 FETCH (FLAGS (\\Seen))"]
    assert fetched_records(lines) == [
        (b"1 FETCH (UID 101 BODY[] {3} )", b"abc"), (b"2 FETCH (BODY[] {2}  UID 102)", b"de"),
        (b"3 FETCH (FLAGS (\\Seen))", None)]


def test_fetch_batches_are_bounded_in_count_and_bytes():
    uids = list(range(1, 121))
    assert [len(b) for b in batches(uids, {}, 100)] == [50, 50, 20]
    sizes = {1: 40, 2: 40, 3: 500, 4: 10}
    assert batches([1, 2, 3, 4], sizes, 100) == [[1, 2], [3], [4]]
