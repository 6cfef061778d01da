"""Personal data: `mydata` mails a person everything stored about them, `forget` erases a person (admins),
and `[business] retention_days` has a daily job delete old raw mails and closed tickets.

What is stored where, and how each table is exported and erased, is listed in handlers/privacy/coverage.py.
"""
from __future__ import annotations

from handlers.privacy.erase import SCRUB_JOB, run_scrub
from handlers.privacy.forget import forget
from handlers.privacy.mydata import mydata
from handlers.privacy.retention import RETENTION_JOB, run_retention, schedule_retention
from handlers.registry import Command, Handlers
from handlers.rules.roles import ADMINS

__all__ = ["handlers", "schedule_retention"]


def handlers() -> Handlers:
    return Handlers(
        commands=[
            # Not `safe`: by email the code round trip proves the mailbox before any data leaves.
            Command("mydata", mydata, aliases=("meinedaten",)),
            Command("forget", forget, allowed=ADMINS, aliases=("vergessen",), section="admin"),
        ],
        jobs={RETENTION_JOB: run_retention, SCRUB_JOB: run_scrub},
    )
