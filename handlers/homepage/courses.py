"""Courses with dates as a homepage shows them: name, place, capacity, free places, price and sessions.

The courses capability reads them (handlers/courses: its own seat rule counts the free places, so the homepage
and the chat's `courses` agree); this keeps only what a homepage may see.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from handlers.courses import coming_courses
from storage.db import UnitOfWork


@dataclass(frozen=True)
class SessionView:
    start: datetime  # aware; the API shows it on the business's clock
    end: datetime


@dataclass(frozen=True)
class CourseView:
    name: str
    location: str | None
    capacity: int
    free_places: int
    price: str | None  # decimal text
    sessions: tuple[SessionView, ...]


async def course_views(uow: UnitOfWork, now: datetime) -> list[CourseView]:
    """The open courses whose first session is still ahead, first session first, as the chat's `courses`."""
    return [CourseView(c.name, c.location, c.capacity, c.free_places, c.price,
                       tuple(SessionView(s.start, s.end) for s in c.sessions))
            for c in await coming_courses(uow, now)]
