"""Courses with dates as a homepage shows them: name, place, capacity, free places, price and sessions.

Courses with dates are not stored yet: the courses capability fills `course_views` from its own tables
(the free places by its own seat rule, so that the homepage and the chat's `courses` agree). Until then
no course is shown.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
    """The courses open for joining at `now`, first session first."""
    return []
