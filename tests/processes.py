"""Worker processes for the race tests, released together by a file barrier.

The test writes each process's spec (with its `ready` file and the shared `go` file) and starts
`python -m MODULE SPEC.json`; each worker connects, touches `ready` and waits for `go` (see
`at_the_barrier`); once all are ready (or one died) the test touches `go` and reads each one's JSON output.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text

from storage.db import Store

ROOT = Path(__file__).resolve().parents[1]
BARRIER_TIMEOUT = 60.0
T = TypeVar("T")


async def released_together(module: str, specs: list[dict], tmp_path: Path, timeout: float = 120) -> list[dict]:
    """Run one `module` process per spec, start them at once and return their outputs, in order."""
    go = tmp_path / "go"
    specs = [{**spec, "ready": str(tmp_path / f"ready-{i}"), "go": str(go)} for i, spec in enumerate(specs)]
    procs = []
    for i, spec in enumerate(specs):
        path = tmp_path / f"spec-{i}.json"
        path.write_text(json.dumps(spec))
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, str(path), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE))
    for _ in range(3000):
        if all(Path(s["ready"]).exists() for s in specs) or any(p.returncode is not None for p in procs):
            break
        await asyncio.sleep(0.01)
    go.touch()
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=timeout)
    for proc, (_out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err.decode()[-2000:]
    return [json.loads(out) for out, _ in outputs]


async def at_the_barrier(store: Store, spec: dict, race: Awaitable[T]) -> T:
    """Connect (so every process starts at full speed), say ready, wait for the start, then race."""
    try:
        async with store.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
        Path(spec["ready"]).touch()
        await wait_for(Path(spec["go"]))
        return await race
    finally:
        await store.dispose()


async def wait_for(path: Path) -> None:
    """Poll for the start barrier (a file the test creates once every process is connected)."""
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no start signal at {path}")
        await asyncio.sleep(0.002)
