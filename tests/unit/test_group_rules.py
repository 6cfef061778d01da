"""Group rules without a store: texts in both languages, group words, seat counts, invoices, names."""
from __future__ import annotations

import tomllib

import pytest

from handlers.context import Refusal
from handlers.members import rules as group_rules
from handlers.members import uploads
from handlers.messages import Attachment, Inbound

CSV_TYPE = "text/csv"


def csv_file(text: str, name: str = "members.csv") -> Attachment:
    return Attachment(name, CSV_TYPE, text.encode("utf-8"))


def test_every_group_text_exists_in_german_and_english():
    from importlib import resources

    folder = resources.files("templates")
    names = {lang: sorted(e.name for e in folder.joinpath(lang).iterdir() if e.name.startswith("groups"))
             for lang in ("de", "en")}
    assert names["de"] == names["en"]
    words = {lang: tomllib.loads(folder.joinpath(lang, "groups.toml").read_text("utf-8")) for lang in ("de", "en")}
    assert {t: sorted(v) for t, v in words["de"].items()} == {t: sorted(v) for t, v in words["en"].items()}


def test_group_new_reads_name_seats_course_and_option():
    parse = group_rules.parse_new_group
    assert parse("new Team Nord 12 First Aid enroll-me") == group_rules.NewGroup("Team Nord", 12, "First Aid", "enroll")
    assert parse('new "Kurs 2026" 5 mich') == group_rules.NewGroup("Kurs 2026", 5, "", "enroll")
    assert parse("neu Team 3 gruppe") == group_rules.NewGroup("Team", 3, "", "group")
    assert parse("new Team 3") == group_rules.NewGroup("Team", 3, "", None)
    for bad in ("", "new", "new Team", "new 5", "Team 5"):
        with pytest.raises(Refusal):
            parse(bad)


@pytest.mark.parametrize("typed", ["²", "٣", "9" * 5000, "1234567", "++5", "0", "50001", "5.0", " "])
def test_a_seat_count_is_a_plain_ascii_number_in_range(typed):
    with pytest.raises(Refusal) as refused:
        group_rules.seat_count(typed)
    assert refused.value.values["reason"] == "bad_seats"


def test_a_seat_count_may_have_a_plus():
    assert group_rules.seat_count("+5") == group_rules.seat_count(" 5 ") == group_rules.seat_count(5) == 5
    assert group_rules.seat_count("50000") == group_rules.MAX_SEATS


def test_invoice_arithmetic_is_decimal():
    lines, total = group_rules.invoice_lines("Seat", 3, "0.10")
    assert total == "0.30" and lines[0]["unit_price"] == "0.10"  # a float would give 0.30000000000000004
    assert group_rules.invoice_lines("Seat", 2, None)[1] == "0.00"


def test_group_names_match_the_longest_leading_words_in_any_case():
    known = [(1, "Team"), (2, "Team Nord"), (3, "Kurs 2026")]
    assert group_rules.match_group(["team", "nord", "Kim"], known) == (2, ["Kim"])
    assert group_rules.match_group(["Team", "Kim"], known) == (1, ["Kim"])
    assert group_rules.match_group(["#3", "x"], known) == (3, ["x"])
    assert group_rules.match_group(["Nord"], known) is None
    assert group_rules.missing_seats(5, 10, 8) == 3 and group_rules.missing_seats(1, 10, 8) == 0


def test_every_inbound_field_the_import_needs_is_in_the_channel_free_message():
    message = Inbound(channel="email", sender="email:a@example.com", received_at=None, text="import Team",
                      attachments=(csv_file("name;email\n"),))
    assert uploads.pick_attachment(message.attachments).name == "members.csv"
    logo = Attachment("logo.png", "image/png", b"\x89PNG")
    assert uploads.pick_attachment((logo, csv_file("x"))).name == "members.csv"
    assert uploads.pick_attachment((logo, Attachment("sig.gif", "image/gif", b""))) is None
