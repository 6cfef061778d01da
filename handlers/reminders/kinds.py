"""What runs the job kinds of reminders and agendas (wired in bot/app.py)."""
from __future__ import annotations

from handlers.registry import Handlers
from handlers.reminders.agenda import run_agenda
from handlers.reminders.reminder import run_reminder
from handlers.reminders.schedule import AGENDA, REMINDER


def handlers() -> Handlers:
    return Handlers(jobs={REMINDER: run_reminder, AGENDA: run_agenda})
