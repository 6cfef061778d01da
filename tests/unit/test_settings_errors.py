"""Bad settings end in one clear line naming the variable, never in a traceback or a shown password."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.cli import main
from bot.mail.imap import parse_imap_url
from bot.mail.smtp import parse_smtp_url, transport_for
from bot.settings import Settings, SettingsError, describe_invalid, hide_password
from tests.fakebotapi import fake_bot_api  # noqa: F401

PASSWORD = "Sup3r:S3cr@t"  # unencoded specials, as people do type them
STRONG_KEY = "k" * 32


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No FRONTDESK_* variables and no .env file from the machine running the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("FRONTDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of the CLI."""
    code = main(list(argv))
    return code, capsys.readouterr().err


# ---- log level ----------------------------------------------------------------------------------


def test_a_log_level_is_read_in_any_case():
    assert settings(log_level="debug").log_level == "DEBUG"


def test_an_unknown_log_level_is_refused_naming_the_variable():
    with pytest.raises(ValidationError) as caught:
        settings(log_level="LOUD")
    assert describe_invalid(caught.value) == (
        "FRONTDESK_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not 'LOUD'")


def test_the_cli_reports_a_bad_log_level_in_one_line(clean_env, capsys):
    clean_env.setenv("FRONTDESK_LOG_LEVEL", "LOUD")
    code, err = run_cli(capsys, "migrate")
    assert code != 0
    assert err.strip().splitlines() == [
        "frontdesk: configuration error: FRONTDESK_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
        "not 'LOUD'"]


# ---- time zone ----------------------------------------------------------------------------------


def test_a_known_time_zone_is_kept():
    assert settings(timezone="America/New_York").timezone == "America/New_York"


@pytest.mark.parametrize("value", ["Mars/Olympus", "", "/etc/localtime", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused_naming_the_variable(value):
    with pytest.raises(ValidationError) as caught:
        settings(timezone=value)
    assert describe_invalid(caught.value).startswith("FRONTDESK_TIMEZONE must be an IANA time zone")


def test_the_cli_reports_a_bad_time_zone_in_one_line(clean_env, capsys):
    clean_env.setenv("FRONTDESK_TIMEZONE", "Mars/Olympus")
    code, err = run_cli(capsys, "migrate")
    assert code != 0
    assert err.strip().splitlines() == [
        "frontdesk: configuration error: FRONTDESK_TIMEZONE must be an IANA time zone such as Europe/Berlin, "
        "not 'Mars/Olympus'"]


def test_other_invalid_values_are_named_without_echoing_them():
    with pytest.raises(ValidationError) as caught:
        settings(telegram_concurrency="many", language="fr")
    line = describe_invalid(caught.value)
    assert line.startswith("FRONTDESK_TELEGRAM_CONCURRENCY: ")
    assert "FRONTDESK_LANGUAGE must be de or en" in line
    assert "many" not in line and "\n" not in line


# ---- webhook ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["8443", "0.0.0.0:", "0.0.0.0:https", "0.0.0.0:99999", "0.0.0.0:0",
                                   "[::1:8443", "0.0.0.0 :8443"])
def test_the_cli_reports_a_bad_webhook_listen_address_in_one_line(clean_env, capsys, value):
    clean_env.setenv("FRONTDESK_WEBHOOK_LISTEN", value)
    code, err = run_cli(capsys, "run")
    assert code == 2
    assert err.strip().splitlines() == [
        f"frontdesk: configuration error: FRONTDESK_WEBHOOK_LISTEN must be HOST:PORT such as 0.0.0.0:8443 "
        f"or [::]:8443, not {value!r}"]


@pytest.mark.parametrize("value, shown", [("0.0.0.0:8443", ("0.0.0.0", 8443)), ("[::]:443", ("::", 443)),
                                          (":8443", ("0.0.0.0", 8443)), ("127.0.0.1:1", ("127.0.0.1", 1))])
def test_a_good_webhook_listen_address_is_kept(value, shown):
    from bot.settings import parse_listen

    assert parse_listen(settings(webhook_listen=value).webhook_listen) == shown


def test_a_webhook_secret_telegram_would_refuse_is_named_without_showing_it(clean_env, capsys):
    clean_env.setenv("FRONTDESK_WEBHOOK_SECRET", "my secret!")
    code, err = run_cli(capsys, "run")
    assert code == 2
    assert err.strip().splitlines() == [
        "frontdesk: configuration error: FRONTDESK_WEBHOOK_SECRET may hold only letters, digits, _ and -, "
        "at most 256 of them"]


async def test_a_webhook_address_that_cannot_be_listened_on_is_one_line(tmp_path, fake_bot_api):
    import asyncio
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    env.update(FRONTDESK_SECRET_KEY=STRONG_KEY, FRONTDESK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/w.db",
               FRONTDESK_TELEGRAM_TOKEN="123:TEST", FRONTDESK_TELEGRAM_API_URL=f"{fake_bot_api.url}/bot",
               FRONTDESK_WEBHOOK_URL="https://desk.example.com/hook",
               FRONTDESK_WEBHOOK_LISTEN="203.0.113.7:8443")  # TEST-NET-3: no address of this machine
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
                                     capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "frontdesk: FRONTDESK_WEBHOOK_LISTEN '203.0.113.7:8443': cannot listen there")


# ---- SMTP and IMAP URLs -------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    f"smtp//kim:{PASSWORD}@mail.example.com",  # the colon after the scheme forgotten
    f"http://kim:{PASSWORD}@mail.example.com",
    f"smtp://kim:{PASSWORD}@mail.example.com:twentyfive",  # a port that is no number
    f"smtp://kim:{PASSWORD}@mail.example.com:99999",
])
def test_a_bad_smtp_url_is_a_settings_error_without_the_password(url):
    with pytest.raises(SettingsError) as caught:
        transport_for(settings(smtp_url=url, mail_from="desk@example.com"))
    message = str(caught.value)
    assert message.startswith("FRONTDESK_SMTP_URL must look like smtp://user:pass@host:port")
    assert "S3cr" not in message and "kim:***@" in message


def test_the_cli_reports_a_bad_smtp_url_in_one_line_without_the_password(clean_env, capsys):
    clean_env.setenv("FRONTDESK_SECRET_KEY", STRONG_KEY)
    clean_env.setenv("FRONTDESK_MAIL_FROM", "desk@example.com")
    clean_env.setenv("FRONTDESK_SMTP_URL", f"smtp//kim:{PASSWORD}@mail.example.com")
    code, err = run_cli(capsys, "run")
    assert code != 0
    assert err.strip().splitlines() == [
        "frontdesk: FRONTDESK_SMTP_URL must look like smtp://user:pass@host:port, "
        "not 'smtp//kim:***@mail.example.com'"]


def test_a_good_smtp_url_still_reads_a_password_with_specials():
    assert parse_smtp_url("smtp://kim:a%3Ab%40c@mail.example.com:587").password == "a:b@c"


def test_a_bad_imap_url_does_not_show_the_password():
    with pytest.raises(ValueError, match="FRONTDESK_IMAP_URL") as caught:
        parse_imap_url(f"imap//desk:{PASSWORD}@mail.example.com/INBOX")
    assert "S3cr" not in str(caught.value)


@pytest.mark.parametrize("url, shown", [
    ("smtp://kim:pw@host:25", "smtp://kim:***@host:25"),
    ("smtp://kim:p@ss:w//rd@host", "smtp://kim:***@host"),  # unencoded specials in the password
    ("smtp//kim:pw@host", "smtp//kim:***@host"),
    ("kim:pw@host", "kim:***@host"),
    ("smtp://kim@host", "smtp://kim@host"),  # no password: nothing to hide
    ("smtp://host:25", "smtp://host:25"),
])
def test_hide_password(url, shown):
    assert hide_password(url) == shown


def test_a_webhook_lease_of_no_time_is_refused(clean_env, capsys):
    clean_env.setenv("FRONTDESK_WEBHOOK_LEASE_SECONDS", "0")
    code, err = run_cli(capsys, "run")
    assert code == 2
    assert err.strip().splitlines() == [
        "frontdesk: configuration error: FRONTDESK_WEBHOOK_LEASE_SECONDS must be more than 0"]
