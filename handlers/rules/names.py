"""The rules a group name must follow (the quoted-name tokenizer is rules.words).

Every command that takes a group name reads it with `words.split_words` or `words.split_first`, so
`members "Rückenfit Süd"` and `credentials „Rückenfit Süd“` read the same name. Group names reach other
people (invitation mails carry them in the subject), so they are short printable text without web or mail
addresses, and a name that only looks like an existing one is refused: both are compared by `skeleton`.
"""
from __future__ import annotations

import re
import unicodedata

from handlers.rules.words import QUOTE_MARKS
from storage.models import name_key

__all__ = ["name_key", "skeleton", "name_problem"]

FORBIDDEN = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})  # controls, RTL overrides, zero-width, unassigned
ADDRESS = re.compile(r"://|\bwww\.|@|[^\W_]\.[^\W\d_]{2,}")  # a URL, a mail address or a domain (paypal.com-verify)
# A small, documented subset of Unicode's confusables (UTS #39): Cyrillic and Greek letters that look Latin,
# digits that look like letters, and letter pairs that read as one letter. Compared after NFKC and casefold.
CONFUSABLE = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h",
    "ӏ": "l", "ԛ": "q", "ԝ": "w", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ɡ": "g", "ı": "i",
    "0": "o", "1": "l", "i": "l", "|": "l",
})
PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def skeleton(name: str) -> str:
    """What a name looks like: NFKC, casefold, no accents, look-alike letters mapped, only letters and digits."""
    folded = unicodedata.normalize("NFD", name_key(name))
    plain = "".join(c for c in folded if not unicodedata.combining(c)).translate(CONFUSABLE)
    plain = "".join(c for c in plain if c.isalnum())
    for pair, letter in PAIRS:
        plain = plain.replace(pair, letter)
    return plain


def name_problem(name: str, limit: int) -> str | None:
    """Why a name cannot be shown to others ("too_long", "unprintable", "address", "quotes"), or None."""
    if len(name) > limit:
        return "too_long"
    if any(unicodedata.category(c) in FORBIDDEN for c in name):
        return "unprintable"
    if any(c in QUOTE_MARKS for c in name):
        return "quotes"
    if ADDRESS.search(unicodedata.normalize("NFKC", name).casefold()):
        return "address"
    return None
