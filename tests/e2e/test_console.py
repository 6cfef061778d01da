"""The console edge as a newcomer meets it: `frontdesk demo` with a pipe on stdin."""
from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from pathlib import Path

import pytest


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
