"""What a well-formed command line looks like, word by word: a mail is a command only when it is one.

A support mail often starts with a command word ("Hilfe bei meiner Buchung", "Cancel my appointment
please", "Code doesn't work"). These checks are cheap and channel-free: the word's arguments have the
shape its handler reads (a number first for `cancel`, nothing for `bookings`, six digits for `confirm`),
so a sentence is not taken for a command. Only `book` needs the catalog (its service name must exist).
"""
from __future__ import annotations

import re
from collections.abc import Callable

Shape = Callable[[str], bool]

DATE = r"\d{4}-\d{1,2}-\d{1,2}"
TIME = r"\d{1,2}:\d{2}"
ID = r"#?\d{1,9}"
NAME_WORD = re.compile(r"^[^\W\d_][\w'’.\-]*$")


def matching(pattern: str) -> Shape:
    """Arguments that match a regular expression (case-insensitive, the whole of them)."""
    compiled = re.compile(pattern, re.I | re.S)
    return lambda args: compiled.fullmatch(args.strip()) is not None


def nothing(args: str) -> bool:
    return not args.strip()


def anything(args: str) -> bool:
    return True


def something(args: str) -> bool:
    return bool(args.strip())


def person_name(args: str) -> bool:
    """`name FIRST LAST`: one to four words of letters, as names are typed."""
    words = args.split()
    return 0 < len(words) <= 4 and all(NAME_WORD.match(w) for w in words)


def with_id(rest: str = r"(\s+.*)?") -> Shape:
    """An id first (`cancel 12 …`), then what the word takes after it."""
    return matching(ID + rest)


# By canonical word. A word missing here takes any arguments: its handler explains bad ones.
SHAPES: dict[str, Shape] = {
    "start": matching(r"\S*"),
    "help": matching(r"\S*"),  # `help` or `help WORD`, never a sentence
    "language": matching(r"(de|en|deutsch|english|englisch|german)?"),
    "email": matching(r"(<?[^@\s<>]+@[^@\s<>]+>?)?"),
    "confirm": matching(r"\d{3}\s?\d{3}"),
    "name": person_name,
    "reset": nothing,
    "bookings": nothing,
    "cancel": with_id(),
    "move": with_id(rf"\s+((on|am)\s+)?{DATE}(\s+((at|um)\s+)?{TIME})?(\s+.*)?"),
    "day": matching(rf"({DATE}|today|heute|tomorrow|morgen)?(\s+\S+(\s+\S+)?)?"),
    "week": matching(rf"({DATE}|today|heute|tomorrow|morgen)?(\s+\S+(\s+\S+)?)?"),
    "appoint": matching(rf".+\s{DATE}\s+{TIME}(\s+.*)?"),
    "requests": nothing,
    "approve": with_id(r""),
    "reject": with_id(),
    "off": matching(rf"(sick|vacation|krank|urlaub)\s+{DATE}(\s+.*)?"),
    "pause": matching(rf"{DATE}\s+{TIME}\s*-\s*{TIME}(\s+.*)?"),
    "services": nothing,
    "mode": matching(r"direct|request|direkt|anfrage"),
    "changes": nothing,
    "accept": with_id(r""),
    "ignore": with_id(r""),
    "audit": matching(r"(\d+)?(\s+\S+)?"),
    "groups": nothing,
    "group": matching(r"(new|neu)\s+.+\s+\d+(\s+.*)?"),
    "members": something,
    "enroll": matching(r".+\s\S+@\S+"),
    "remove": matching(r".+\s\S+@\S+"),
    "import": something,
    "seats": matching(r".+\s\+\d+"),
    "refund": matching(r".+\s\d+\s+.+"),
    "tickets": matching(r"\S*"),
    "ticket": matching(r"\[?#?(T-?)?\d{1,9}\]?"),
    "reply": matching(r"\[?#?(T-?)?\d{1,9}\]?\s+.+"),
    "note": matching(r"\[?#?(T-?)?\d{1,9}\]?\s+.+"),
    "close": matching(r"\[?#?(T-?)?\d{1,9}\]?"),
    "unlock": with_id(r""),
    "mydata": nothing,
    "forget": something,
    "courses": nothing,
    "course": matching(r"(add|neu|cancel|absagen)\s+.+"),
}


def well_shaped(word: str, args: str) -> bool:
    """Whether `args` have the shape the canonical `word` reads."""
    return SHAPES.get(word, anything)(args)


def only_line(text: str) -> str | None:
    """The text's one non-empty line, or None when it holds none or several."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 else None


FILE_WORDS = frozenset({"import", "licence", "schools"})  # the mail's attachment is what the command reads


def takes_file(word: str) -> bool:
    """Whether a command reads the mail's attachment: its text may then be a covering note."""
    return word in FILE_WORDS
