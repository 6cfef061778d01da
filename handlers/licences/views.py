"""`licences`: an admin sees every licence, a buyer their own; each with its schools' states. The same rows
feed `export licences`."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from handlers.context import Context
from handlers.messages import Reply
from handlers.rules.roles import ADMINS
from storage.models import Licence, LicenceSchool, Product, School

FIELDS = ("licence", "product", "carrier", "status", "starts_on", "ends_on", "school_id", "school", "type",
          "contact", "email", "state", "credit_cents")
DEFAULT = ("licence", "product", "carrier", "status", "ends_on", "school_id", "school", "state")


async def visible(ctx: Context) -> list[tuple[Licence, Product]]:
    query = select(Licence, Product).join(Product, Product.id == Licence.product_id).order_by(Licence.id)
    if not ctx.roles & ADMINS:
        query = query.where(Licence.buyer_person_id == ctx.person.id)
    return [(licence, product) for licence, product in (await ctx.session.execute(query)).all()]


async def schools_of(ctx: Context, ids: list[int]) -> dict[int, list[tuple[LicenceSchool, School]]]:
    found: dict[int, list[tuple[LicenceSchool, School]]] = {i: [] for i in ids}
    rows = await ctx.session.execute(select(LicenceSchool, School).join(School, School.id == LicenceSchool.school_id)
                                     .where(LicenceSchool.licence_id.in_(ids)).order_by(School.number))
    for entry, school in rows.all():
        found[entry.licence_id].append((entry, school))
    return found


async def list_licences(ctx: Context, args: str) -> list[Reply]:
    """Each licence with its term, status and every school's state."""
    licences = await visible(ctx)
    schools = await schools_of(ctx, [licence.id for licence, _ in licences])
    return [ctx.say("licences_list", licences=licences, schools=schools, admin=bool(ctx.roles & ADMINS))]


async def licence_rows(ctx: Context, args: str) -> list[dict[str, Any]]:
    """One row per school of each licence the asker may see."""
    licences = await visible(ctx)
    schools = await schools_of(ctx, [licence.id for licence, _ in licences])
    return [{"licence": licence.id, "product": product.name, "carrier": licence.carrier, "status": licence.status,
             "starts_on": licence.starts_on, "ends_on": licence.ends_on, "school_id": school.number,
             "school": school.name, "type": school.type, "contact": entry.contact, "email": entry.email,
             "state": entry.state, "credit_cents": entry.credit_cents}
            for licence, product in licences for entry, school in schools[licence.id]]
