"""Reading a mail whose parts nest too deeply: without its deepest parts, or by its headers alone."""
from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from typing import cast

from bot.mail.parse.headers import POLICY

# The standard library parses (and walks) nested parts recursively: some thousand levels raise
# RecursionError. Real mail nests a handful of levels; deeper parts are left out and named in `unread`.
MAX_DEPTH = 40
DEEP_PARTS = "deep_parts"  # an `unread` entry: parts nested deeper than MAX_DEPTH were left out
HEAD_ONLY = "head_only"  # an `unread` entry: only the headers could be read


def read_message(raw: bytes) -> tuple[EmailMessage, tuple[str, ...]]:
    """Parse a mail; one nested deeper than MAX_DEPTH is read without its deepest parts, and if even that
    fails, by its headers alone. Also says what was left out."""
    if not may_nest_deeply(raw):  # the parser takes seconds to reach its recursion limit: skip that try
        msg = parse_within(raw)
        if msg is not None:
            return msg, ()
    shallow, cut = cut_deep(raw, MAX_DEPTH)
    msg = parse_within(shallow)
    if msg is not None:
        return msg, (DEEP_PARTS,) if cut else ()
    msg = BytesHeaderParser(policy=POLICY).parsebytes(raw)
    for name in ("content-type", "content-transfer-encoding"):
        del msg[name]
    msg.set_payload("")
    return msg, (HEAD_ONLY,)


def may_nest_deeply(raw: bytes) -> bool:
    """Whether a mail names more boundaries and attached mails than MAX_DEPTH (cheap: byte counts)."""
    return sum(raw.count(word) for word in (b"oundary", b"OUNDARY", b"essage/", b"ESSAGE/")) > MAX_DEPTH


def parse_within(raw: bytes) -> EmailMessage | None:
    """Parse, or None when the parts nest deeper than MAX_DEPTH."""
    try:
        msg = email.message_from_bytes(raw, policy=POLICY)
    except RecursionError:
        return None
    return msg if nesting(msg) <= MAX_DEPTH else None


def nesting(msg: Message) -> int:
    """How deep parts are nested (a plain mail: 0), counted without recursion."""
    deepest, todo = 0, [(msg, 0)]
    while todo:
        part, depth = todo.pop()
        deepest = max(deepest, depth)
        if part.is_multipart():
            # A multipart's payload is its list of parts; the stubs cannot tie that to is_multipart().
            todo.extend((sub, depth + 1) for sub in cast(list[Message], part.get_payload()))
    return deepest


def cut_deep(raw: bytes, limit: int) -> tuple[bytes, bool]:
    """The raw mail without the parts nested deeper than `limit`, found by their boundaries line by line;
    and whether any was left out."""
    lines = raw.splitlines(keepends=True)
    start, blocks, boundary, depth = part_head(lines, 0, 0, limit)
    out = [line for block in (blocks[:-1] if depth > limit else blocks) for line in block]
    if depth > limit:
        return b"".join(out), True
    opened = [(boundary, depth)] if boundary else []  # multiparts open around the current line
    skipping = cut = False
    index = start
    while index < len(lines):
        line, index = lines[index], index + 1
        found = delimiter(line, opened)
        if found is None:
            if not skipping:
                out.append(line)
            continue
        level, closing = found
        del opened[level + 1:]  # a parent's delimiter ends every part inside it
        parent_depth = opened[level][1]
        if closing:
            opened.pop()
        elif parent_depth + 1 > limit:
            skipping = cut = True
            continue
        out.append(line)
        skipping = False
        if closing:
            continue
        index, blocks, boundary, depth = part_head(lines, index, parent_depth + 1, limit)
        out.extend(line for block in (blocks[:-1] if depth > limit else blocks) for line in block)
        skipping = depth > limit
        cut = cut or skipping
        if boundary and not skipping:
            opened.append((boundary, depth))
    return b"".join(out), cut


def part_head(lines: list[bytes], index: int, depth: int,
              limit: int) -> tuple[int, list[list[bytes]], bytes | None, int]:
    """Read a part's header block, and those of the mails inside an attached mail (each one level deeper):
    (the next line, the blocks, the multipart boundary if any, the depth of the innermost block)."""
    blocks: list[list[bytes]] = []
    while True:
        block, index = header_block(lines, index)
        blocks.append(block)
        head = BytesHeaderParser(policy=email.policy.compat32).parsebytes(b"".join(block))
        kind = head.get_content_type()
        if kind.startswith("multipart/"):
            found = head.get_boundary()
            return index, blocks, found.encode("ascii", "surrogateescape") if found else None, depth
        if not kind.startswith("message/") or kind == "message/delivery-status" or depth > limit:
            return index, blocks, None, depth
        depth += 1


def header_block(lines: list[bytes], index: int) -> tuple[list[bytes], int]:
    """The header lines from `index` through the blank line that ends them (a delimiter ends them too)."""
    block: list[bytes] = []
    while index < len(lines):
        line = lines[index]
        if line.startswith(b"--"):
            break
        block.append(line)
        index += 1
        if not line.strip():
            break
    return block, index


def delimiter(line: bytes, opened: list[tuple[bytes, int]]) -> tuple[int, bool] | None:
    """(which open multipart, whether it closes) if the line is a boundary delimiter of one of them."""
    if not line.startswith(b"--"):
        return None
    bare = line.rstrip()
    for level in range(len(opened) - 1, -1, -1):
        boundary = b"--" + opened[level][0]
        if bare == boundary or bare == boundary + b"--":
            return level, bare != boundary
    return None
