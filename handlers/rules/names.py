"""Names typed in commands: one tokenizer for quoted names, and the rules a group name must follow.

Every command that takes a group name reads it with `words` or `split_first`, so `members "Rückenfit Süd"`
and `credentials „Rückenfit Süd“` read the same name. Group names reach other people (invitation mails
carry them in the subject), so they are short printable text without web or mail addresses, and a name
that only looks like an existing one is refused: both are compared by `skeleton`.
"""
from __future__ import annotations

import re
import unicodedata

from storage.models import name_key

__all__ = ["words", "split_first", "unquote", "name_key", "skeleton", "name_problem", "QUOTE_MARKS"]

# "…", „…“ (German), “…” (English), '…', «…» and »…«. A single quote opens a name only at the start of a
# word and closes only at its end, so O'Brien stays one word.
TOKEN = re.compile(r'"([^"]*)"|„([^“”"]*)[“”"]|“([^”"]*)[”"]|”([^”"]*)”|«([^»]*)»|»([^«]*)«'
                   r"|'([^']*)'(?!\S)|(\S+)")
QUOTE_MARKS = frozenset('"„“”«»')  # never in a group name, so quoting one always works
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


def words(text: str) -> list[str]:
    """Split on spaces; a quoted name ("…", „…“, “…”, '…', «…») is one word, without its quotes."""
    return [next(g for g in m.groups() if g is not None) for m in TOKEN.finditer(text or "")]


def split_first(text: str) -> tuple[str, str]:
    """The first word (a quoted name counts as one, quotes taken off) and the rest of the text as typed."""
    text = (text or "").strip()
    found = TOKEN.match(text)
    if not found:
        return "", ""
    return next(g for g in found.groups() if g is not None), text[found.end():].strip()


def unquote(text: str) -> str:
    """A whole name that may be quoted: "VIP Kunden" → VIP Kunden; an unquoted name stays as typed."""
    first, rest = split_first(text)
    return first if not rest and first != (text or "").strip() else " ".join((text or "").split())


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
