"""A separate OS process for the course race: its own Store and Desk on the same database URL.

    python -m tests.course_race_worker SPEC.json

SPEC.json: {"url": …, "now": ISO, "senders": ["telegram:5000", …], "course": "Rückenfit", "ready": PATH, "go": PATH}

It connects, writes the `ready` file, waits for the `go` file (the start barrier), then sends `/join COURSE` for
every sender at once, each through the desk in its own unit of work. It prints {"answers": {sender: template}}
as JSON on stdout.
"""
from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from bot.app import build_handlers
from handlers.context import DeskConfig
from handlers.messages import Inbound
from handlers.router import Desk
from storage.db import Store
from tests.conftest import SECRET, FakeClock
from tests.race_worker import wait_for


async def main(spec: dict) -> dict:
    store = Store.from_url(spec["url"])
    clock = FakeClock(datetime.fromisoformat(spec["now"]))
    desk = Desk(store, DeskConfig(secret_key=SECRET, default_language="en"), build_handlers(), clock)

    async def join(sender: str) -> tuple[str, str | None]:
        inbound = Inbound(channel="telegram", sender=sender, received_at=clock.now(), text=f"/join {spec['course']}",
                          language_hint="en")
        replies = await desk.handle(inbound)
        return sender, replies[0].template

    try:
        async with store.uow() as uow:  # connect before the barrier, so both start at full speed
            await uow.session.execute(text("SELECT 1"))
        Path(spec["ready"]).touch()
        await wait_for(Path(spec["go"]))
        answers = dict(await asyncio.gather(*(join(s) for s in spec["senders"])))
    finally:
        await store.dispose()
    return {"answers": answers}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))))
