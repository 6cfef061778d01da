"""The upload child process: reads one upload with a time and a memory limit and writes JSON.

Started as `python -m handlers.members.child` by members.uploads; it imports only the readers (no desk, no
storage), so each upload pays for little more than the interpreter's start."""
from __future__ import annotations

import importlib
import json
import resource
import sys

from handlers.members.imports import MAX_FILE_BYTES, Checked, FileRefused, ImportRow, RowError, parse_import

PARSE_SECONDS = 20.0  # a list of 50 000 rows takes ~5 s
PARSE_MEMORY = 1024 * 1024 * 1024  # address space of the child; openpyxl on a 5 MB file needs ~300 MB


# ---- results across the process boundary --------------------------------------------------------

MEMBER_PARSER = "handlers.members.child:member_list"


def refused_json(refused: FileRefused) -> dict:
    return {"refused": {"reason": refused.reason, "values": {k: v for k, v in refused.values.items() if k != "reason"}}}


def refused_of(data: dict) -> FileRefused | None:
    """The refusal a child's answer carries, if any."""
    return FileRefused(data["refused"]["reason"], **data["refused"]["values"]) if "refused" in data else None


def member_list(name: str, mime: str, data: bytes, region: str) -> dict:
    """The child's work for a member list: parse and check it."""
    return to_json(parse_import(name, mime, data, region))


def to_json(result: Checked | FileRefused) -> dict:
    if isinstance(result, FileRefused):
        return refused_json(result)
    return {"valid": [r.to_dict() for r in result.valid], "errors": [vars(e) for e in result.errors],
            "ignored": result.ignored, "delimiter": result.delimiter}


def from_json(data: dict) -> Checked | FileRefused:
    refused = refused_of(data)
    if refused is not None:
        return refused
    return Checked([ImportRow(**r) for r in data["valid"]], [RowError(**e) for e in data["errors"]],
                   data["ignored"], data["delimiter"])


# ---- the child side -------------------------------------------------------------------------------

def limit_self(seconds: float, memory: int) -> None:
    """The child's own limits: address space and CPU time (the parent's clock is the first limit)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(seconds) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))


def main(argv: list[str]) -> int:
    name, mime, parser, seconds, memory, *extra = argv
    limit_self(float(seconds), int(memory))
    data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    module, _, function = parser.partition(":")
    try:
        result = getattr(importlib.import_module(module), function)(name, mime, data, *extra)
    except FileRefused as refused:
        result = refused_json(refused)
    except MemoryError:
        result = refused_json(FileRefused("too_complex", limit=int(memory)))
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
