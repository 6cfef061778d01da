"""A separate OS process for the course race: its own Store and Desk on the same database URL.

    python -m tests.course_race_worker SPEC.json

SPEC.json: {"url": …, "now": ISO, "senders": ["telegram:5000", …], "course": "Rückenfit", "ready": PATH, "go": PATH}

Once released at the barrier (tests/processes.py), it sends `/join COURSE` for
every sender at once, each through the desk in its own unit of work. It prints {"answers": {sender: template}}
as JSON on stdout.
"""
from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

from bot.app import build_handlers
from handlers.context import DeskConfig
from handlers.messages import Inbound
from handlers.router import Desk
from storage.db import Store
from tests.conftest import SECRET, FakeClock
from tests.processes import at_the_barrier


async def main(spec: dict) -> dict:
    store = Store.from_url(spec["url"])
    clock = FakeClock(datetime.fromisoformat(spec["now"]))
    desk = Desk(store, DeskConfig(secret_key=SECRET, default_language="en"), build_handlers(), clock)

    async def join(sender: str) -> tuple[str, str | None]:
        inbound = Inbound(channel="telegram", sender=sender, received_at=clock.now(), text=f"/join {spec['course']}",
                          language_hint="en")
        replies = await desk.handle(inbound)
        return sender, replies[0].template

    answers = await at_the_barrier(store, spec, asyncio.gather(*(join(s) for s in spec["senders"])))
    return {"answers": dict(answers)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))))
