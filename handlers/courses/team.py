"""Who looks after a course: the admins, and the staff who work at the course's location."""
from __future__ import annotations

from sqlalchemy import select

from handlers.context import Context
from handlers.rules.roles import ADMINS
from storage.db import UnitOfWork
from storage.models import Course, Role, StaffHours


async def admins(uow: UnitOfWork) -> list[int]:
    return list(dict.fromkeys((await uow.session.scalars(select(Role.person_id).where(Role.role.in_(ADMINS)))).all()))


async def course_staff(uow: UnitOfWork, course: Course) -> list[int]:
    """The people told of a course's registrations: every admin, and staff with hours at its location."""
    local = (await uow.session.scalars(select(StaffHours.person_id).where(
        StaffHours.location_id == course.location_id))).all()
    return list(dict.fromkeys([*await admins(uow), *local]))


async def looks_after(ctx: Context, course: Course) -> bool:
    """Whether the speaker may see the course's participants."""
    if ctx.roles & ADMINS:
        return True
    return "staff" in ctx.roles and ctx.person.id in await course_staff(ctx.uow, course)


async def tell_course_staff(ctx: Context, course: Course, template: str, /, **values) -> int:
    """Tell the course's staff (not the one acting), each where and in the language they read."""
    told = 0
    for person_id in await course_staff(ctx.uow, course):
        if person_id != ctx.person.id:
            told += await ctx.tell(person_id, template, **values)
    return told


async def tell_admins(ctx: Context, template: str, /, **values) -> int:
    told = 0
    for person_id in await admins(ctx.uow):
        told += await ctx.tell(person_id, template, **values)
    return told
