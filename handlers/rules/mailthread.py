"""A mail thread's subject and ids: tags and Re: prefixes, the ids a mail answers, References for an answer.

One References policy for every answer we send: the thread's root (RFC 5322 advises keeping the first)
and the latest ids, bounded.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

MAX_REFERENCES = 20  # long References headers get folded badly by some servers; keep the root and the latest
# Ids of a mail's References looked up to find its ticket: the root and the latest. PostgreSQL takes at
# most 32 767 bind parameters in one query, and a real thread is found long before that.
LOOKUP_REFERENCES = 100
TAG = re.compile(r"\[#T-(\d{1,9})\]", re.IGNORECASE)
# Prefixes mail clients put before a subject when replying or forwarding, in the languages we serve.
PREFIXES = re.compile(r"^\s*((re|aw|antw|sv|fwd?|wg)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
REPLY_PREFIXES = re.compile(r"^\s*((re|aw|antw|sv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


class Threaded(Protocol):
    """What threading reads of a mail (a parsed mail, or the desk's MailMeta)."""

    @property
    def message_id(self) -> str: ...
    @property
    def in_reply_to(self) -> str | None: ...
    @property
    def references(self) -> Sequence[str]: ...


def tag(ticket_id: int) -> str:
    """Tag a ticket number for subjects: 12 → [#T-12]."""
    return f"[#T-{ticket_id}]"


def tagged_number(subject: str) -> int | None:
    """The ticket number tagged in a subject, if any."""
    found = TAG.search(subject or "")
    return int(found.group(1)) if found else None


def topic(subject: str) -> str:
    """A subject without our tags and Re:/AW:/Fwd: prefixes: where an email command may stand, and what a
    new ticket stores."""
    return " ".join(PREFIXES.sub("", TAG.sub(" ", subject or "")).split())


def reply_subject(subject: str, fallback: str) -> str:
    """'Re: ' + the original subject (its ticket tag kept), without piling up 'Re: AW: Re:'."""
    return f"Re: {REPLY_PREFIXES.sub('', subject).strip() or fallback}"


def normal_id(message_id: str | None) -> str | None:
    """Bracket a Message-ID, so stored and referenced ids compare equal."""
    bare = (message_id or "").strip().strip("<>").strip()
    return f"<{bare}>" if bare else None


def trimmed(chain: Sequence[str], most: int = MAX_REFERENCES) -> list[str]:
    """Keep the thread's root and the latest ids (RFC 5322 advises keeping the first)."""
    return list(chain) if len(chain) <= most else [chain[0], *chain[-(most - 1):]]


def thread_refs(mail: Threaded) -> list[str]:
    """List the ids a mail answers: the direct parent first, then References from the newest back (only
    the root and the latest LOOKUP_REFERENCES - 1 of a longer list)."""
    ids = [mail.in_reply_to, *reversed(trimmed(mail.references, LOOKUP_REFERENCES))]
    return list(dict.fromkeys(filter(None, map(normal_id, ids))))


def chain_after(mail: Threaded) -> list[str]:
    """Build References for an answer to this mail: its References (or In-Reply-To), then its id."""
    parents: list[str | None] = [*mail.references] or [mail.in_reply_to]
    return list(dict.fromkeys(filter(None, map(normal_id, [*parents, mail.message_id]))))


def references(chain: Sequence[str]) -> str:
    """The References header for an answer in this chain: the root and the latest ids."""
    return " ".join(trimmed(chain))
