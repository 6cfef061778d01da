"""One typed settings object, read from FRONTDESK_* variables and a .env file."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from pathlib import Path
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "xxx"}
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as a secret_token
ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")  # scheme://host[:port]


class SettingsError(Exception):
    """A setting is missing or unusable; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRONTDESK_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///frontdesk.db"
    secret_key: str = ""
    setup: Path | None = None
    telegram_token: str = ""
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_rate_per_second: float = 30.0  # Bot API's documented overall limit
    telegram_concurrency: int = 16
    telegram_typing_after_seconds: float = 1.0  # "typing…" only for answers slower than this
    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0:8443"
    webhook_secret: str = ""
    webhook_lease_seconds: float = 60.0  # a stored update another worker may take over after (its worker died)
    smtp_url: str = ""
    imap_url: str = ""
    imap_poll_seconds: int = 30
    mail_from: str = ""
    outbox_dir: Path = Path("./frontdesk-outbox")
    files_dir: Path = Path("./frontdesk-files")  # where the console saves files sent to its speaker
    outbox_max_attempts: int = 8
    jobs_poll_seconds: float = 5.0  # how often the job worker looks for due jobs
    jobs_max_attempts: int = 5  # tries before a job gives up (admins see it with `jobs`)
    jobs_lease_seconds: float = 300.0  # a claimed job another worker may take over after (its worker died)
    owners: str = ""
    timezone: str = "Europe/Berlin"
    language: str = "de"
    hold_seconds: int = 600
    code_ttl_seconds: int = 900
    code_max_per_hour: int = 5
    log_level: str = "INFO"
    api_listen: str = ""  # HOST:PORT of the homepage API; empty: off
    api_origins: str = ""  # homepage origins allowed by CORS (and to frame the booking page), comma-separated
    api_proxies: str = ""  # addresses of reverse proxies whose X-Forwarded-For names the booking page's visitor
    metrics_listen: str = ""  # HOST:PORT for Prometheus metrics (GET /metrics) and GET /healthz; empty: off
    _webhook_token: str = PrivateAttr(default="")

    @field_validator("webhook_listen")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("api_listen")
    @classmethod
    def _api_listen_address(cls, value: str) -> str:
        if value.strip():
            parse_listen(value.strip(), "FRONTDESK_API_LISTEN")
        return value.strip()

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_listen_address(cls, value: str) -> str:
        if value.strip():
            parse_listen(value.strip(), "FRONTDESK_METRICS_LISTEN")
        return value.strip()

    @field_validator("api_origins")
    @classmethod
    def _api_origin_shapes(cls, value: str) -> str:
        for origin in split_origins(value):
            if not ORIGIN.fullmatch(origin):
                raise ValueError(f"FRONTDESK_API_ORIGINS must list origins such as https://www.example.com, "
                                 f"comma-separated, not {origin!r}")
        return value

    @field_validator("webhook_lease_seconds")
    @classmethod
    def _positive_lease(cls, value: float) -> float:
        if not value > 0:  # with no lease every answer would find its claim run out
            raise ValueError("FRONTDESK_WEBHOOK_LEASE_SECONDS must be more than 0")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: str) -> str:
        if value and not WEBHOOK_SECRET.fullmatch(value):  # the value itself is a secret: not shown
            raise ValueError("FRONTDESK_WEBHOOK_SECRET may hold only letters, digits, _ and -, "
                             "at most 256 of them")
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("de", "en"):
            raise ValueError("FRONTDESK_LANGUAGE must be de or en")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):  # unknown name, or not a name at all ("", "/etc/…")
            raise ValueError(f"FRONTDESK_TIMEZONE must be an IANA time zone such as Europe/Berlin, "
                             f"not {value!r}") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        # Checked here because logging.basicConfig would otherwise fail with a traceback at start.
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"FRONTDESK_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {value!r}")
        return level

    @property
    def api_origin_list(self) -> list[str]:
        """The origins a homepage may call the API from, as browsers send them (no trailing slash)."""
        return split_origins(self.api_origins)

    @property
    def api_proxy_set(self) -> frozenset[str]:
        """The reverse proxies in front of the homepage server, as their peer addresses appear."""
        return frozenset(a.strip() for a in self.api_proxies.split(",") if a.strip())

    @property
    def owner_addresses(self) -> list[str]:
        return [a.strip() for a in self.owners.split(",") if a.strip()]

    def require_secret(self) -> None:
        """Refuse to run with a missing or placeholder FRONTDESK_SECRET_KEY."""
        if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 16:
            raise SettingsError(
                "FRONTDESK_SECRET_KEY is missing or too weak: set it to a random string of "
                "at least 16 characters (for example: python -c 'import secrets; print(secrets.token_hex(32))')"
            )

    @property
    def webhook_secret_token(self) -> str:
        """The secret Telegram must send with each webhook update: FRONTDESK_WEBHOOK_SECRET, or else one
        derived from FRONTDESK_SECRET_KEY (the same in every process sharing the key, so one process
        registering the webhook does not lock the others out), or else a random one for this process."""
        if self.webhook_secret:
            return self.webhook_secret
        if not self._webhook_token:
            if self.secret_key:
                self._webhook_token = hmac.new(self.secret_key.encode(), b"frontdesk telegram webhook",
                                               hashlib.sha256).hexdigest()
            else:
                self._webhook_token = secrets.token_urlsafe(32)
        return self._webhook_token

    def require_mail_from(self) -> None:
        if self.smtp_url and not self.mail_from:
            raise SettingsError("FRONTDESK_MAIL_FROM is required when FRONTDESK_SMTP_URL is set")


def load_settings(**overrides) -> Settings:
    return Settings(**overrides)


def parse_listen(listen: str, variable: str = "FRONTDESK_WEBHOOK_LISTEN") -> tuple[str, int]:
    """'0.0.0.0:8443', '[::]:8443' or ':8443' → (host, port); anything else is a ValueError naming the variable."""
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535 \
            or any(c.isspace() for c in listen) or host.count("[") != host.count("]"):
        raise ValueError(f"{variable} must be HOST:PORT such as 0.0.0.0:8443 or [::]:8443, "
                         f"not {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def split_origins(value: str) -> list[str]:
    """'https://A.example/, http://b.example:8000' → ['https://a.example', 'http://b.example:8000']."""
    return [origin.strip().rstrip("/").lower() for origin in value.split(",") if origin.strip()]


def describe_invalid(exc: ValidationError) -> str:
    """One line naming each bad variable and what is wrong; pydantic's echo of the raw value is left out
    (it may be a secret), only our own validators' messages show a value, and only harmless ones."""
    problems = []
    for error in exc.errors():
        name = "FRONTDESK_" + str(error["loc"][0]).upper() if error["loc"] else "a setting"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(message if message.startswith(name) else f"{name}: {message}")
    return "; ".join(problems)


def split_url(url: str) -> SplitResult | None:
    """The parts of a URL setting, or None when it cannot be read (a port that is no number, bad brackets)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port, which urlsplit itself lets through
    except ValueError:
        return None
    return parts


def hide_password(url: str) -> str:
    """The URL with whatever follows user: in its credentials replaced by ***, for error messages and logs.

    Works on malformed URLs too (that is when they get shown): everything between the first ':' after
    the user name and the last '@' goes, so a password holding ':', '@' or '/' is hidden all the same.
    """
    userinfo, at, rest = url.rpartition("@")
    if not at:
        return url
    start = userinfo.find("//") + 2 if "//" in userinfo else 0
    user, colon, _ = userinfo[start:].partition(":")
    if not colon:
        return url
    return f"{userinfo[:start]}{user}:***@{rest}"
