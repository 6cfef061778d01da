"""Reminders before appointments and the staff's daily agenda: jobs scheduled by `schedule` (called where
appointments are confirmed, moved and ended, and by the setup), run by `reminder` and `agenda`; `kinds`
names what runs each job kind.

Nothing is imported here: handlers.appointments imports `schedule`, which must not pull in the booking
modules that import handlers.appointments in turn.
"""
