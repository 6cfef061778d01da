"""The benchmarks still run, as the README says, at a tiny size: each ends with its ratios.

No figure is checked here (the machine's speed is not the code's); the figures come from full runs.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
        assert "3 of 3 walks completed, 3 confirmed in the database" in done.stdout
        assert "error replies: 0;" in done.stdout and "by query): 0\n" in done.stdout
