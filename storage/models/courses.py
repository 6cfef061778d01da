"""Courses with dates: the course (with its count of taken places), its sessions, and each person's place."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, _name_key_default


class Course(Base):
    """A course people join for all of its sessions.

    `taken` counts the places held or confirmed. It only moves by conditional UPDATEs (`taken < capacity`
    to take one, a place's own status change to give one back), and the CHECK is the last word: the
    database never lets more than `capacity` people hold or have a place, whatever the application does.
    """

    __tablename__ = "course"
    __table_args__ = (CheckConstraint("taken >= 0 AND taken <= capacity", name="course_places_within_capacity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # Names are unique regardless of case: "Yoga" and "yoga" added at once cannot both land.
    name_key: Mapped[str] = mapped_column(String(480), unique=True, index=True, default=_name_key_default)
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id"))
    capacity: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    price: Mapped[str | None] = mapped_column(String(32))  # decimal text; money is never a float
    min_participants: Mapped[int | None] = mapped_column(Integer)
    booking_deadline_days: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | cancelled
    created_by: Mapped[str] = mapped_column(String(340))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]


class CourseSession(Base):
    """One date of a course."""

    __tablename__ = "course_session"
    __table_args__ = (Index("ix_course_session_course_start", "course_id", "start_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]


class CoursePlace(Base):
    """A person's place in a course: held (until its code comes back), confirmed, waiting, or over (left,
    expired, cancelled). One row per course and person, reused when they join again."""

    __tablename__ = "course_place"
    __table_args__ = (
        UniqueConstraint("course_id", "person_id", name="uq_course_place_person"),
        Index("ix_course_place_queue", "course_id", "status", "waiting_since"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(340))  # where they joined from: whose codes confirm the place
    status: Mapped[str] = mapped_column(String(16))  # held | confirmed | waiting | left | expired | cancelled
    hold_expires_at: Mapped[datetime | None]
    waiting_since: Mapped[datetime | None]  # the waiting list's order
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
