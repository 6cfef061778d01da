"""Pure rules for one-time codes: 6 digits from `secrets`, kept only as an HMAC."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from datetime import datetime, timedelta

CODE_PATTERN = re.compile(r"^[0-9]{6}$")


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def typed_code(text: str) -> str:
    """What was typed, as ASCII digits without spaces: "１２３ ４５６" and "١٢٣٤٥٦" are the code 123456 too."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(str(unicodedata.decimal(ch, ch)) for ch in "".join(folded.split()))


def digest(key: bytes, purpose: str, target: str, code: str) -> str:
    """Bind the code to what it proves, so a code for one purpose never unlocks another."""
    return hmac.new(key, f"{purpose}\x00{target}\x00{code}".encode(), hashlib.sha256).hexdigest()


def matches(key: bytes, purpose: str, target: str, code: str, stored: str) -> bool:
    return hmac.compare_digest(digest(key, purpose, target, code), stored)


def next_issue_allowed(issued: list[datetime], now: datetime, per_hour: int) -> datetime | None:
    """None if another code may go out now, else the time when it may (a sliding hour)."""
    recent = sorted(t for t in issued if t > now - timedelta(hours=1))
    if len(recent) < per_hour:
        return None
    return recent[len(recent) - per_hour] + timedelta(hours=1)
