"""The benchmarks still run, as the README says, at a tiny size: each ends with its ratios.

No figure is checked here (the machine's speed is not the code's); the figures come from full runs.
"""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL, postgres_skip_reason
from tests.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, args, last_words", [
    ("throughput.py", ["--messages", "60", "--users", "10"], "ratio full/echo:"),
    ("mail.py", ["--mails", "20"], "total"),
    ("import.py", ["--rows", "200", "--runs", "1"], "ratio import/parse:"),
    ("availability.py", ["--appointments", "2000", "--staff", "5", "--runs", "1", "--tasks", "5"],
     "free days, all locations:"),
    ("homepage.py", ["--appointments", "200", "--runs", "3"], "free times through the API"),
    ("invoices.py", ["--lines", "20", "--runs", "1"], "pdf+xml"),
    ("week.py", ["--appointments", "30", "--runs", "2"], "median ms per week picture:"),
    ("licences.py", ["--schools", "200", "--listed", "20", "--runs", "1"], "median dry run"),
    ("load.py", ["--users", "3", "--think-ms", "0"], "p95 reply latency:"),
])
def test_a_benchmark_runs_at_a_tiny_size(script, args, last_words):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].startswith(last_words), done.stdout[-2000:]
    assert "0 error replies" in done.stdout or script != "throughput.py"
    if script == "load.py":
        assert_three_booked(done.stdout)


def assert_three_booked(stdout: str) -> None:
    assert "3 of 3 walks completed, 3 confirmed in the database" in stdout
    assert "error replies: 0;" in stdout and "by query): 0\n" in stdout


async def test_the_load_benchmark_runs_with_two_webhook_workers():
    reason = await postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(ROOT / "bench" / "load.py"), "--users", "3", "--think-ms", "0",
                         "--workers", "2", "--database-url", PG_URL],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("p95 reply latency:"), done.stdout[-2000:]
    assert ", 2 webhook workers;" in lines[0], lines[0]
    assert_three_booked(done.stdout)


def test_the_load_benchmark_refuses_workers_without_postgresql():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--workers", "2"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--workers N ≥ 2 needs --database-url" in done.stderr, done.stderr



@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_the_load_benchmark_stops_its_workers_when_interrupted(signum):
    reason = await postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    bench = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "load.py"), "--users", "20", "--think-ms", "5000", "--workers", "2",
        "--database-url", PG_URL, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background shell ignores Ctrl-C
    children = Path(f"/proc/{bench.pid}/task/{bench.pid}/children")
    try:
        await wait_for(lambda: two_children(children), "the two workers to start")
        workers = children.read_text().split()
        await asyncio.sleep(3)  # the warm-up or the walks are under way
        bench.send_signal(signum)
        await asyncio.wait_for(bench.wait(), 60)
    finally:
        if bench.returncode is None:
            bench.kill()
            await bench.wait()
    assert bench.returncode != 0
    assert not [pid for pid in workers if alive(pid)], (await bench.stderr.read()).decode()[-3000:]


async def two_children(children: Path) -> bool:
    return children.exists() and len(children.read_text().split()) == 2


def alive(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; nobody may have reaped it yet
