"""The console edge as a newcomer meets it: `frontdesk demo` with a pipe on stdin."""
from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.models import Outbox


def frontdesk(cwd: Path, *args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    environment.update({"FRONTDESK_LANGUAGE": "en", **(env or {})})
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120, env=environment)


def outbox_mails(cwd: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted((cwd / "frontdesk-outbox").glob("*.eml"))]


def test_piped_demo_session_answers_each_line_and_exits_zero(tmp_path):
    result = frontdesk(tmp_path, "demo", stdin="/start\n/help\n3\n2\n/frobnicate\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Physio am Park" in out  # the demo business greets
    assert "/email" in out  # help lists the words a customer may use
    assert "1) Deutsch" in out and "2) English" in out  # choice 3 of the welcome was "Language"
    assert "From now on I will answer in English." in out  # "2" picked English
    assert '"frobnicate"' in out  # an unknown word gets a hint, never silence


def test_demo_email_verification_survives_a_restart(tmp_path):
    first = frontdesk(tmp_path, "demo", stdin="/language en\n/email kim@example.com\n")
    assert first.returncode == 0, first.stderr
    mails = outbox_mails(tmp_path)
    assert len(mails) == 1 and mails[0]["To"] == "kim@example.com"
    code = mails[0]["Subject"].split()[0]
    assert code.isdigit() and code in mails[0].get_body(("plain",)).get_content()
    second = frontdesk(tmp_path, "demo", stdin=f"{code}\n")  # a new process continues where the last stopped
    assert second.returncode == 0, second.stderr
    assert "kim@example.com is confirmed" in second.stdout


def test_speaker_switch_makes_the_owner_see_owner_help(tmp_path):
    result = frontdesk(tmp_path, "demo", stdin="/language en\n:as telegram:1001\n/language en\n/help\n")
    assert result.returncode == 0, result.stderr
    assert "(you are now telegram:1001)" in result.stdout


def test_run_without_secret_key_names_the_variable(tmp_path):
    result = frontdesk(tmp_path, "run", env={"FRONTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"})
    assert result.returncode == 2
    assert "FRONTDESK_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("secret", ["change-me", "short"])
def test_run_with_a_placeholder_secret_is_refused(tmp_path, secret):
    result = frontdesk(tmp_path, "run", env={"FRONTDESK_SECRET_KEY": secret})
    assert result.returncode == 2 and "FRONTDESK_SECRET_KEY" in result.stderr


def test_setup_command_prints_changes_then_nothing(tmp_path):
    example = Path(__file__).parents[2] / "examples" / "practice.toml"
    env = {"FRONTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db"}
    first = frontdesk(tmp_path, "setup", str(example), env=env)
    assert first.returncode == 0, first.stderr
    assert "Massage" in first.stdout
    second = frontdesk(tmp_path, "setup", str(example), env=env)
    assert second.returncode == 0 and "no changes" in second.stdout


def test_bad_setup_file_names_file_key_and_value(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[business]\nname = "X"\ntimezone = "Europe/Vienna"\nlanguage = "de"\n\n'
                   '[[locations]]\nname = "A"\nhours.mon = ["18:00-08:00"]\n')
    result = frontdesk(tmp_path, "setup", str(bad), env={"FRONTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/b.db"})
    assert result.returncode == 2
    assert "bad.toml" in result.stderr and "hours.mon" in result.stderr and "18:00-08:00" in result.stderr
    assert "Traceback" not in result.stderr



def test_an_unknown_holiday_code_stops_setup_naming_file_line_key_and_value(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[business]\nname = "X"\ntimezone = "Europe/Vienna"\nlanguage = "de"\nholidays = "XX-9"\n')
    database = tmp_path / "h.db"
    result = frontdesk(tmp_path, "setup", str(bad), env={"FRONTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{database}"})
    assert result.returncode == 2
    assert f'{bad}:5: business holidays: "XX-9" is not a public holiday code' in result.stderr
    assert "Traceback" not in result.stderr


# ---- what the console shows and delivers ------------------------------------------------------

KEY = {"FRONTDESK_SECRET_KEY": "k" * 32}
OTHER_PEOPLES = [  # (channel, recipient, subject, text): each holds a code that is nobody's business here
    ("email", "kim@example.com", "482913 is your code", "Your code: 482913"),
    ("telegram", "telegram:1002", None, "Lukas, your code is 739201"),
    ("console", "console:other", None, "Your code is 650384"),
]


async def queue(store, rows) -> list[int]:
    """Outbox rows as the desk writes them, due now; returns their ids."""
    now = datetime.now(timezone.utc)
    made = [Outbox(channel=channel, recipient=recipient, subject=subject, text=text, headers={}, attachments=[],
                   status="pending", attempts=0, next_attempt_at=now, created_at=now)
            for channel, recipient, subject, text in rows]
    async with store.uow() as uow:
        uow.session.add_all(made)
        await uow.commit()
        return [row.id for row in made]


async def outbox(store) -> list[Outbox]:
    async with store.uow() as uow:
        return list(await uow.session.scalars(select(Outbox).order_by(Outbox.id)))


async def run_frontdesk(cwd: Path, *args: str, stdin: str = "", env: dict | None = None):
    return await asyncio.to_thread(frontdesk, cwd, *args, stdin=stdin, env=env)


async def test_chat_leaves_every_outbox_row_to_the_configured_transports(tmp_path, sqlite_store):
    await queue(sqlite_store, OTHER_PEOPLES)
    result = await run_frontdesk(tmp_path, "chat", "--as", "console:me", env=KEY,
                                 stdin="/start\n/language en\n/email lea@example.com\n")
    assert result.returncode == 0, result.stderr
    assert "Welcome" in result.stdout  # its own speaker's replies are shown
    assert "code to lea@example.com" in result.stdout
    rows = await outbox(sqlite_store)
    assert [r.recipient for r in rows] == ["kim@example.com", "telegram:1002", "console:other", "lea@example.com"]
    lea_code = rows[3].subject.split()[0]
    for shown in ("482913", "739201", "650384", lea_code):  # nobody's code is printed, not even lea's
        assert shown not in result.stdout + result.stderr
    for row in rows:  # nothing claimed, nothing sent: `frontdesk run` delivers them, by SMTP and Telegram
        assert (row.status, row.attempts, row.claimed_until, row.sent_at) == ("pending", 0, None, None), row.recipient
    assert not (tmp_path / "frontdesk-outbox").exists()  # no mail went into a local folder instead of SMTP


async def test_demo_shows_chat_messages_only_to_their_addressee_and_mails_into_the_folder(tmp_path, sqlite_store):
    await queue(sqlite_store, OTHER_PEOPLES + [("telegram", "telegram:1003", None, "Eva, your code is 204816")])
    result = await run_frontdesk(tmp_path, "demo", stdin="/language en\n:as telegram:1002\n")
    assert result.returncode == 0, result.stderr
    before, switched, after = result.stdout.partition("(you are now telegram:1002)")
    assert switched
    assert "739201" not in before and "Lukas, your code is 739201" in after  # shown when Lukas speaks
    assert "650384" not in result.stdout and "204816" not in result.stdout  # the others' wait for them
    assert "482913" not in result.stdout  # mail is announced by its file, not its content
    [mail] = outbox_mails(tmp_path)
    assert mail["To"] == "kim@example.com" and mail["Subject"] == "482913 is your code"
    assert re.search(r"mail to kim@example\.com: frontdesk-outbox/\S+\.eml", before)
    status = {row.recipient: row.status for row in await outbox(sqlite_store)}
    assert status == {"kim@example.com": "sent", "telegram:1002": "sent", "console:other": "pending",
                      "telegram:1003": "pending"}


async def test_chat_saves_a_file_it_is_sent_and_prints_its_path(tmp_path, sqlite_store):
    example = Path(__file__).parents[2] / "examples" / "practice.toml"
    env = {**KEY, "FRONTDESK_SETUP": str(example)}  # telegram:1001 is the owner
    added = await run_frontdesk(tmp_path, "chat", "--as", "telegram:1001", env=env,
                                stdin="/language en\n/member add Kim Novak kim@example.com phone=01 2345678\n")
    assert added.returncode == 0 and "pending" in added.stdout, added.stdout + added.stderr
    invitation = next(r for r in await outbox(sqlite_store) if r.recipient == "kim@example.com")
    payload = re.search(r"/start (acc-\S+)", invitation.text).group(1)
    accepted = await run_frontdesk(tmp_path, "chat", "--as", "telegram:2002", env=env,
                                   stdin=f"/language en\n/start {payload}\n")
    assert "activated" in accepted.stdout, accepted.stdout + accepted.stderr

    result = await run_frontdesk(tmp_path, "chat", "--as", "telegram:1001", env=env,
                                 stdin="/language en\n/credentials all\n")
    assert result.returncode == 0, result.stderr
    [shown] = re.findall(r"saved as (\S+\.csv)", result.stdout)
    saved = tmp_path / shown
    assert saved.parent == tmp_path / "frontdesk-files" and saved.name.startswith("credentials-")
    assert "kim@example.com" in saved.read_text(encoding="utf-8-sig")
    assert saved.stat().st_mode & 0o077 == 0  # passwords: readable by this user only

    again = await run_frontdesk(tmp_path, "chat", "--as", "telegram:1001", env=env,
                                 stdin="/language en\n/credentials all\n")
    [second] = re.findall(r"saved as (\S+\.csv)", again.stdout)
    assert second != shown and saved.exists()  # a second file never overwrites the first


def test_a_file_name_cannot_leave_the_folder(tmp_path):
    from bot.console import save_file
    from handlers.messages import Attachment

    folder = tmp_path / "files"
    for name in ("../../escape.csv", "/etc/passwd", "..\\..\\x.csv", ".hidden", "a\x00b\nc.csv", ""):
        path = save_file(folder, Attachment(name, "text/csv", b"x"))
        assert path.parent == folder and not path.name.startswith("."), name
    assert sorted(p.name for p in folder.iterdir()) == ["a_b_c.csv", "escape.csv", "file", "hidden", "passwd",
                                                         "x.csv"]


def test_demo_and_chat_keep_schema_steps_quiet_but_migrate_reports_them(tmp_path):
    demo = frontdesk(tmp_path, "demo", stdin="/start\n")
    assert demo.returncode == 0, demo.stderr
    assert "alembic" not in demo.stdout + demo.stderr and "Running upgrade" not in demo.stderr
    chat_dir = tmp_path / "chat"
    chat_dir.mkdir()
    chat = frontdesk(chat_dir, "chat", stdin="/start\n", env=KEY)
    assert chat.returncode == 0, chat.stderr
    assert "alembic" not in chat.stdout + chat.stderr
    migrate_dir = tmp_path / "migrate"
    migrate_dir.mkdir()
    migrate = frontdesk(migrate_dir, "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert "Running upgrade" in migrate.stderr  # an operator still sees what a migration did


async def test_demo_runs_what_is_due_so_an_agenda_reaches_its_staff_member(tmp_path):
    """The demo is the only process of its world: it runs due jobs as it runs its outbox."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from storage.db import Store
    from storage.models import Job

    first = await run_frontdesk(tmp_path, "demo", stdin="/start\n")
    assert first.returncode == 0, first.stderr
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/frontdesk.db")
    try:
        async with store.uow() as uow:
            [job] = (await uow.session.scalars(select(Job).where(Job.kind == "agenda"))).all()  # Lukas's, ahead
            now = datetime.now(timezone.utc)
            job.due_at = now - timedelta(minutes=1)  # today's agenda, due a minute ago
            job.payload = {**job.payload, "day": now.astimezone(ZoneInfo("Europe/Vienna")).date().isoformat()}
            await uow.commit()
        second = await run_frontdesk(tmp_path, "demo", stdin=":as telegram:1002\n")
        assert second.returncode == 0, second.stderr
        assert "Guten Tag Lukas Huber, Ihre Termine heute" in second.stdout, second.stdout  # he speaks German
        async with store.uow() as uow:
            ran = await uow.session.get_one(Job, job.id)
            assert ran.done_at is not None and ran.outcome == "done"
    finally:
        await store.dispose()
