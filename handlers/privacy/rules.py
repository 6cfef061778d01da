"""Pure rules of personal data: the pseudonym an erased person keeps, finding and replacing what named them
in stored text, hiding codes in what an export shows, and when the daily retention run is due."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

PSEUDONYM_PREFIX = "erased-"
MIN_NAME = 3  # a shorter name ("Al") would take every such word out of other people's texts
RETENTION_AT = time(3, 0)  # the daily retention run: at night, local time
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")  # codes are six digits; code mails carry them in the subject
HIDDEN_CODE = "••••••"


def pseudonym(secret_key: bytes, person_id: int) -> str:
    """What an erased person is called from then on: stable, and without the key not traced back to the id."""
    digest = hmac.new(secret_key, f"erased-person\x00{person_id}".encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:12]


def hide_codes(text: str | None) -> str | None:
    """A stored subject as an export shows it: a code mail's code is a secret, even a used one."""
    return CODE.sub(HIDDEN_CODE, text) if text else text


@dataclass(frozen=True)
class Traces:
    """The strings that name a person in stored text: addresses and emails, and names written out in full."""

    addresses: tuple[str, ...]  # "email:kim@example.org", "telegram:1001"
    emails: tuple[str, ...]  # "kim@example.org"
    names: tuple[str, ...]  # "Kim Ott"

    @classmethod
    def of(cls, addresses: Iterable[str], emails: Iterable[str], names: Iterable[str | None]) -> Traces:
        """Distinct, longest first (an address before the email inside it); names shorter than MIN_NAME left out."""
        def tidy(values: Iterable[str | None], minimum: int = 1) -> tuple[str, ...]:
            found = {" ".join(v.split()) for v in values if v and len(" ".join(v.split())) >= minimum}
            return tuple(sorted(found, key=lambda v: (-len(v), v)))
        return cls(tidy(addresses), tidy(emails), tidy(names, MIN_NAME))

    @property
    def strings(self) -> tuple[str, ...]:
        return self.addresses + self.emails + self.names

    def like_needles(self) -> list[str]:
        """Substrings to look for with LIKE, as text and as JSON stores it (non-ASCII letters escaped)."""
        needles: list[str] = []
        for value in self.strings:
            for form in (value, json.dumps(value)[1:-1]):
                if form not in needles:
                    needles.append(form)
        return needles

    def pattern(self) -> re.Pattern[str] | None:
        """One expression for every trace, each only where it stands alone: "kim@example.org" is not found
        in "joakim@example.org", nor "Kim Ott" in "Kim Otto"."""
        if not self.strings:
            return None
        mail = [rf"(?<![\w.+\-]){re.escape(v)}(?![\w\-])(?!\.\w)" for v in self.addresses + self.emails]
        names = [rf"(?<!\w){_spaced(v)}(?!\w)" for v in self.names]
        return re.compile("|".join(mail + names), re.IGNORECASE)


def _spaced(name: str) -> str:
    """A name whose words may stand apart by any whitespace, as a text may wrap it."""
    return r"\s+".join(re.escape(word) for word in name.split())


def replace_traces(value: Any, pattern: re.Pattern[str], replacement: str) -> Any:
    """The value (text, or JSON of lists and objects) with every trace replaced; other values as they were."""
    if isinstance(value, str):
        return pattern.sub(replacement, value)
    if isinstance(value, list):
        return [replace_traces(item, pattern, replacement) for item in value]
    if isinstance(value, dict):
        return {key: replace_traces(item, pattern, replacement) for key, item in value.items()}
    return value


def next_retention_run(now: datetime, zone: str) -> datetime:
    """The next RETENTION_AT in the business's time zone strictly after `now`, in UTC."""
    tz = ZoneInfo(zone)
    day: date = now.astimezone(tz).date()
    while True:
        at = datetime.combine(day, RETENTION_AT, tzinfo=tz).astimezone(timezone.utc)
        if at > now:
            return at
        day += timedelta(days=1)


def retention_key(due: datetime, zone: str) -> str:
    """The job key of a retention run: its local day, so one day never gets two runs."""
    return due.astimezone(ZoneInfo(zone)).date().isoformat()
