"""The booking page's pure rules: signed form stamps against form robots, signed hold numbers, the keys that
count a visitor's open holds, and what a page query says in words and parameters. No I/O.

Everything signed uses FRONTDESK_SECRET_KEY, each kind of value under its own label, so a signature made for
one can never pass for another.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from handlers.booking.form import ANY, BookingQuery
from handlers.rules.values import COLOUR
from handlers.rules.words import hhmm

MIN_FILL = timedelta(seconds=3)  # people need longer to type a name and an address; form robots do not
MAX_FILL = timedelta(hours=12)  # a form older than this is sent again with a fresh stamp
SIGNATURE = 16  # hex digits shown of an HMAC (64 bits): enough against guessing, short in a URL
MAX_FIELD = 120  # characters of a page parameter read at all


def sign(key: bytes, label: str, value: str) -> str:
    """A short HMAC of `value` under `label`."""
    return hmac.new(key, f"{label}\x00{value}".encode(), hashlib.sha256).hexdigest()[:SIGNATURE]


def verified(key: bytes, label: str, token: str) -> str | None:
    """The value of a `value.signature` token signed under `label`, or None if it is not one."""
    value, dot, signature = token.rpartition(".")
    if not dot or not hmac.compare_digest(sign(key, label, value), signature):
        return None
    return value


def stamp(key: bytes, now: datetime) -> str:
    """When a form was handed out, signed: the page sends it back with the form."""
    seconds = str(int(now.timestamp()))
    return f"{seconds}.{sign(key, 'form', seconds)}"


def robot(key: bytes, honeypot: str, token: str, now: datetime) -> str | None:
    """Why a sent form looks like a robot's ("honeypot", "unsigned", "too_fast", "too_old"), or None.

    The honeypot is a field people never see; a form robot fills every field. A person takes more than
    MIN_FILL from seeing the form to sending it; a robot that posts at once does not."""
    if honeypot.strip():
        return "honeypot"
    seconds = verified(key, "form", token.strip())
    if seconds is None or not seconds.isdigit():
        return "unsigned"
    age = now - datetime.fromtimestamp(int(seconds), now.tzinfo)
    if age < MIN_FILL:
        return "too_fast"
    if age > MAX_FILL:
        return "too_old"
    return None


def hold_token(key: bytes, appointment_id: int) -> str:
    """The hold's number, signed: the code page's address. Without the signature nobody can spend the five
    tries of someone else's hold by counting numbers."""
    return f"{appointment_id}.{sign(key, 'hold', str(appointment_id))}"


def hold_of(key: bytes, token: str) -> int | None:
    """The hold number a token names, or None if it is not one we signed."""
    value = verified(key, "hold", token.strip()[:MAX_FIELD])
    return int(value) if value is not None and value.isdigit() and len(value) < 16 else None


def place_token(key: bytes, place_id: int) -> str:
    """A course place's number, signed (under its own label): the code page's address for a course."""
    return f"{place_id}.{sign(key, 'place', str(place_id))}"


def place_of(key: bytes, token: str) -> int | None:
    """The place number a token names, or None if it is not one we signed."""
    value = verified(key, "place", token.strip()[:MAX_FIELD])
    return int(value) if value is not None and value.isdigit() and len(value) < 16 else None


def holder(key: bytes, kind: str, address: str) -> str:
    """The key a visitor's open holds are counted under: an HMAC of "email:…" or "client:…", never the address."""
    return hmac.new(key, f"hold-seat\x00{kind}:{address}".encode(), hashlib.sha256).hexdigest()[:40]


def accent(value: str | None) -> str | None:
    """A colour given as `#rrggbb` or `rrggbb` (a `#` in a URL must be written %23), lower case, or None."""
    if not value:
        return None
    value = value.strip()
    value = value if value.startswith("#") else f"#{value}"
    return value.lower() if COLOUR.match(value) else None


def text_on(colour: str) -> str:
    """Black or white, whichever reads better on `colour` (WCAG relative luminance)."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#ffffff"


def mask(email: str) -> str:
    """An address as a page may show it to whoever holds its link: k…@example.com (a word joiner after the
    ellipsis keeps a narrow screen from breaking the line there)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}…\u2060@{domain}"


@dataclass(frozen=True)
class Wanted:
    """What a page's address or form asks for, as typed (names in any case; day YYYY-MM-DD, time HH:MM)."""

    service: str = ""
    location: str = ""
    staff: str = ""  # a name, or "any"
    day: str = ""
    time: str = ""

    @classmethod
    def of(cls, params) -> Wanted:
        """From a mapping of parameters; each cut to MAX_FIELD characters, missing ones empty."""
        return cls(*(" ".join(str(params.get(name, ""))[:MAX_FIELD].split()) for name in FIELDS))

    @property
    def typed(self) -> str:
        """The chat's typed form of it (without the word `book`), which the chat's own parser reads."""
        parts = [self.service]
        if self.location:
            parts += ["at", self.location]
        if self.staff:
            parts += ["with", self.staff]
        if self.day:
            parts += ["on", self.day]
        if self.time:
            parts += ["at", self.time]
        return " ".join(parts) if self.service else ""


FIELDS = ("service", "location", "staff", "day", "time")


def params_of(query: BookingQuery) -> dict[str, str]:
    """A query as page parameters, in walk order, the unchosen left out."""
    found = {"service": query.service, "location": query.location,
             "staff": "any" if query.staff == ANY else query.staff,
             "day": query.day.isoformat() if isinstance(query.day, date) else None,
             "time": hhmm(query.minute) if query.minute is not None else None}
    return {name: value for name, value in found.items() if value}


def client_address(peer: str | None, forwarded: str, proxies: frozenset[str]) -> str:
    """Where a request comes from: the connection's peer; behind a proxy we were told to trust, the last address
    in its X-Forwarded-For that is not one of those proxies (earlier ones the client may have made up)."""
    address = peer or "unknown"
    if address not in proxies:
        return address
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if hop not in proxies:
            return hop[:64]
    return address
