"""One typed settings object, read from FRONTDESK_* variables and a .env file."""
from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "xxx"}


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
    smtp_url: str = ""
    imap_url: str = ""
    imap_poll_seconds: int = 30
    mail_from: str = ""
    outbox_dir: Path = Path("./frontdesk-outbox")
    outbox_max_attempts: int = 8
    owners: str = ""
    timezone: str = "Europe/Berlin"
    language: str = "de"
    hold_seconds: int = 600
    code_ttl_seconds: int = 900
    code_max_per_hour: int = 5
    log_level: str = "INFO"

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in ("de", "en"):
            raise ValueError("FRONTDESK_LANGUAGE must be de or en")
        return value

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

    def require_mail_from(self) -> None:
        if self.smtp_url and not self.mail_from:
            raise SettingsError("FRONTDESK_MAIL_FROM is required when FRONTDESK_SMTP_URL is set")


def load_settings(**overrides) -> Settings:
    return Settings(**overrides)
