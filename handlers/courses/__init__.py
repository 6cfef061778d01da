"""Courses with dates (seed 002): `courses`, `join` (a hold confirmed by a code, or the waiting list), `leave`,
`participants` for the course's staff, and `course add|cancel` for admins.

The database never lets more than a course's capacity hold or have a place (handlers/courses/places). A freed
place goes to the first in line with a hold and a code; a hold that runs out passes it on (jobs in `timing`).
Other capabilities read courses through `coming_courses` (the homepage) and `course_rows` /
`participant_rows` (exports), which need no channel.
"""
from __future__ import annotations

from handlers.courses.admin import course_command
from handlers.courses.holds import PURPOSE
from handlers.courses.joining import course_named, join, leave, place_confirmed, place_exhausted
from handlers.courses.lists import (
    COURSE_FIELDS,
    PARTICIPANT_FIELDS,
    course_rows,
    list_courses,
    participant_rows,
    participants,
)
from handlers.courses.timing import JOBS
from handlers.courses.views import CourseView, coming_courses
from handlers.registry import Command, ExportList, Handlers
from handlers.rules.roles import ADMINS, TEAM

__all__ = ["COURSE_FIELDS", "PARTICIPANT_FIELDS", "CourseView", "coming_courses", "course_rows", "handlers",
           "participant_rows"]


def handlers() -> Handlers:
    # join and leave are open to everyone; participants checks per course who looks after it.
    return Handlers(
        commands=[
            Command("courses", list_courses, aliases=("kurse",), section="courses", safe=True),
            Command("join", join, aliases=("teilnehmen", "anmelden"), section="courses"),
            Command("leave", leave, aliases=("abmelden",), section="courses"),
            Command("participants", participants, allowed=TEAM, aliases=("teilnehmer",), section="courses",
                    safe=True),
            Command("course", course_command, allowed=ADMINS, aliases=("kurs",), section="courses"),
        ],
        completions={PURPOSE: place_confirmed},
        exhaustions={PURPOSE: place_exhausted},
        line_checks={"join": course_named, "leave": course_named, "participants": course_named},
        jobs=dict(JOBS),
        exports={"courses": ExportList("courses", course_rows, COURSE_FIELDS, aliases=("kurse",)),
                 "participants": ExportList("participants", participant_rows, PARTICIPANT_FIELDS, allowed=TEAM,
                                            aliases=("teilnehmer",))},
    )
