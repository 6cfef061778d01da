"""Pure rules of personal data: every table with a person in it is covered, traces are found only where they
stand alone, codes never show, the pseudonym is stable, and the nightly retention run lands on the local night."""
from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table

from handlers.messages import Attachment, recorded_names
from handlers.privacy.coverage import COVERED, EXCLUDED, uncovered
from handlers.privacy.export import SECTIONS
from handlers.privacy.rules import (
    Traces,
    hide_codes,
    next_retention_run,
    pseudonym,
    replace_traces,
    retention_key,
)
from handlers.privacy.sweep import UNSEARCHED, names_person, searched_columns
from handlers.setup.read import parse_setup
from handlers.setup.spec import SetupError
from storage.models import Base

KEY = b"k" * 32


# ---- coverage -----------------------------------------------------------------------------------


def test_every_table_with_a_person_in_it_is_covered_or_excluded_with_a_reason():
    assert uncovered(Base.metadata) == {}
    assert not set(COVERED) & set(EXCLUDED)
    assert set(COVERED) | set(EXCLUDED) <= set(Base.metadata.tables)
    assert all(reason.strip() for reason in EXCLUDED.values())


def test_a_new_table_with_a_person_id_or_an_address_is_caught():
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    Table("loyalty_card", metadata, Column("id", Integer, primary_key=True),
          Column("holder_id", ForeignKey("person.id")))
    Table("callback", metadata, Column("id", Integer, primary_key=True), Column("requested_by", String(340)))
    Table("staff_note", metadata, Column("id", Integer, primary_key=True), Column("person_id", Integer))
    assert uncovered(metadata) == {"loyalty_card": {"holder_id"}, "callback": {"requested_by"},
                                   "staff_note": {"person_id"}}


def test_a_new_person_column_on_a_covered_table_is_caught():
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    metadata.tables["ticket"].append_column(Column("assigned_by", String(340)))
    assert uncovered(metadata) == {"ticket": frozenset({"customer_id", "email", "assigned_by"})}


def test_every_covered_table_names_a_section_the_export_writes():
    assert {covered.section for covered in COVERED.values()} == set(SECTIONS)


def test_the_erasure_searches_every_text_column_but_the_ones_named_with_a_reason():
    searched = {(table.name, name) for table, name in searched_columns()}
    assert ("outbox", "text") in searched and ("audit", "detail") in searched and ("audit", "actor") in searched
    assert ("ticket_message", "text") in searched and ("closure", "created_by") in searched
    assert not searched & set(UNSEARCHED)
    assert set(UNSEARCHED) <= {(t.name, c.name) for t in Base.metadata.sorted_tables for c in t.columns}


# ---- traces -------------------------------------------------------------------------------------


def kim() -> Traces:
    return Traces.of(["telegram:5551234", "email:kim@example.org"], ["kim@example.org"], ["Kim Ott", "Al", None])


def test_traces_are_replaced_where_they_stand_alone():
    pattern = kim().pattern()
    assert pattern is not None
    text = ("Kim Ott (kim@example.org, telegram:5551234) wrote. Kim Otto, joakim@example.org, "
            "kim@example.org.uk, telegram:55512345 and KIM   OTT too. Al and Alan stay.")
    assert replace_traces(text, pattern, "erased-x") == (
        "erased-x (erased-x, erased-x) wrote. Kim Otto, joakim@example.org, "
        "kim@example.org.uk, telegram:55512345 and erased-x too. Al and Alan stay.")
    assert replace_traces("email:kim@example.org", pattern, "erased-x") == "erased-x"
    assert replace_traces("Mail to kim@example.org.", pattern, "erased-x") == "Mail to erased-x."


def test_traces_in_json_are_replaced_in_values_only():
    pattern = kim().pattern()
    assert pattern is not None
    stored = {"name": "Kim Ott", "rows": [{"email": "kim@example.org", "n": 3}], "ok": True, "none": None}
    assert replace_traces(stored, pattern, "erased-x") == {
        "name": "erased-x", "rows": [{"email": "erased-x", "n": 3}], "ok": True, "none": None}


def test_like_needles_find_json_that_escapes_letters():
    traces = Traces.of([], [], ["Jörg Müller"])
    assert "J\\u00f6rg M\\u00fcller" in traces.like_needles() and "Jörg Müller" in traces.like_needles()
    assert Traces.of([], [], []).pattern() is None


def test_codes_never_show_in_an_export():
    assert hide_codes("123456 is your code for Physio") == "•••••• is your code for Physio"
    assert hide_codes("Invoice 2026-0042, 1234567 items") == "Invoice 2026-0042, 1234567 items"
    assert hide_codes(None) is None


def test_the_pseudonym_is_stable_and_says_nothing_without_the_key():
    assert pseudonym(KEY, 7) == pseudonym(KEY, 7)
    assert pseudonym(KEY, 7).startswith("erased-") and len(pseudonym(KEY, 7)) == len("erased-") + 12
    assert pseudonym(KEY, 7) != pseudonym(KEY, 8) != pseudonym(b"o" * 32, 8)


# ---- retention ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "expected"), [
    (datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc), datetime(2026, 12, 8, 2, 0, tzinfo=timezone.utc)),
    (datetime(2026, 12, 7, 1, 59, tzinfo=timezone.utc), datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)),
    (datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc), datetime(2026, 12, 8, 2, 0, tzinfo=timezone.utc)),
    # the night the clocks go forward: 03:00 CEST is 01:00 UTC
    (datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc), datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc)),
])
def test_the_retention_run_is_at_three_at_night_local_time(now, expected):
    assert next_retention_run(now, "Europe/Vienna") == expected
    assert retention_key(expected, "Europe/Vienna") == expected.date().isoformat()


def test_a_run_is_keyed_by_its_local_day():
    late = datetime(2026, 12, 7, 23, 30, tzinfo=timezone.utc)  # already the 8th in Vienna
    assert retention_key(late, "Europe/Vienna") == "2026-12-08"
    assert retention_key(late, "America/New_York") == "2026-12-07"


SETUP = """
[business]
name = "Physio"
timezone = "Europe/Vienna"
language = "de"
{line}
"""


def test_retention_days_is_read_from_the_setup_file():
    assert parse_setup(SETUP.format(line="retention_days = 730"), "s.toml").business.retention_days == 730
    assert parse_setup(SETUP.format(line=""), "s.toml").business.retention_days is None


@pytest.mark.parametrize("value", ["0", '"730"', "true", "-5", "36501", "7.5"])
def test_a_bad_retention_days_names_file_line_and_key(value):
    with pytest.raises(SetupError) as caught:
        parse_setup(SETUP.format(line=f"retention_days = {value}"), "s.toml")
    assert str(caught.value).startswith("s.toml:6: business retention_days:")


# ---- files of delivered mails -------------------------------------------------------------------

KIM_PATTERN = Traces.of(["email:kim@example.org"], ["kim@example.org"], ["Kim Ott"]).pattern()


def test_a_file_keeps_the_record_of_whom_it_names_and_an_old_row_reads_as_not_recorded():
    made = Attachment("R-2026-000001.pdf", "application/pdf", b"%PDF-1.3", names=(7, 3, 7))
    assert made.stored()["names"] == [3, 7]
    assert Attachment.from_stored(made.stored()) == Attachment("R-2026-000001.pdf", "application/pdf", b"%PDF-1.3",
                                                               names=(3, 7))
    old = {"name": "a.csv", "type": "text/csv", "data": base64.b64encode(b"x").decode()}
    assert "names" not in Attachment.from_stored(old).stored() and Attachment.from_stored(old).names is None
    assert Attachment("none.png", "image/png", b"", names=()).stored()["names"] == []  # made, names nobody
    for bad in ("7", [7, "8"], [True], None, {"7": 1}):
        assert recorded_names({**old, "names": bad}) is None, bad


def stored_text(content: str, **more) -> dict:
    return {"name": "f.txt", "type": "text/plain", "data": base64.b64encode(content.encode()).decode(), **more}


def test_a_file_that_records_whom_it_names_is_judged_by_that_record_alone():
    assert names_person(stored_text("", names=[4, 7]), 7, KIM_PATTERN)
    assert not names_person(stored_text("Kim Ott", names=[4]), 7, KIM_PATTERN)  # the record is not second-guessed
    assert names_person(stored_text("", names=[7]), 7, None)  # a person with no trace to search for
    assert names_person(stored_text("Kim Ott"), 7, KIM_PATTERN)  # no record: its text is searched
    assert not names_person(stored_text("Kim Otto"), 7, KIM_PATTERN)
    assert names_person(stored_text("kim@example.org", names="7"), 7, KIM_PATTERN)  # a bad record: searched
    assert not names_person(stored_text("Kim Ott"), 7, None)
    assert not names_person("not a file", 7, KIM_PATTERN)
