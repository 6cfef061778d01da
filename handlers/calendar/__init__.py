"""The calendar for administrators and staff: services, hours, appointments entered by hand,
the day and week views, closures (sick, vacation, pause) and the answers to booking requests.

Rights come from the setup file. Owners and admins may do everything; other staff only what their
Staff.rights allow (book_for_colleagues, own_hours, settings). A refusal for a missing right is
answered and audited; bad input is a Refusal naming the problem and the command's usage.
"""
from handlers.calendar.commands import handlers

__all__ = ["handlers"]
