"""Email addresses, pure: the one stored spelling of an address, or a refusal naming what was typed."""
from __future__ import annotations

import re
import unicodedata

from handlers.refusal import Refusal

EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]{2,}$")


def canonical_email(text: str) -> str | None:
    """The one spelling of an address that is stored, compared and rate-limited, or None if it is none.

    NFKC folds full-width letters and dots, the domain goes through IDNA and back (so "Bücher.DE" and
    "bücher.de" are one), and the whole address is lower case: `Target@` and `target@` are one mailbox
    in practice, and a limit per address must not be dodged by changing letter case.
    """
    candidate = unicodedata.normalize("NFKC", text).strip().strip("<>").strip()
    if len(candidate) > 254 or not EMAIL.match(candidate):
        return None
    local, _, domain = candidate.rpartition("@")
    try:
        domain = domain.encode("idna").decode("idna")
    except UnicodeError:
        return None
    address = f"{local}@{domain}".lower()
    return address if EMAIL.match(address) else None


def canonical_address(address: str) -> str:
    """A channel address ("email:…", "telegram:…") with its email part in the one stored spelling."""
    kind, _, value = address.partition(":")
    if kind != "email":
        return address
    email = canonical_email(value)
    return f"email:{email}" if email else address


def normalise_email(text: str) -> str:
    """Check and normalise an address, or refuse with a message naming what was typed."""
    email = canonical_email(text)
    if email is None:
        raise Refusal("email_invalid", value=text.strip()[:80])
    return email
