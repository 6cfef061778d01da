"""The few places where SQLite and PostgreSQL need different SQL, one branch per dialect."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(dialect: str, model, conflict_columns: list[str]):
    """INSERT … ON CONFLICT (cols) DO NOTHING for either dialect."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing(index_elements=conflict_columns)


async def serialize(session, *names: str) -> None:
    """Let only one transaction at a time past this point for each name, until it ends.

    PostgreSQL: transaction-scoped advisory locks, taken in sorted order so two transactions that want
    the same names cannot deadlock. SQLite needs nothing: every transaction there begins with
    BEGIN IMMEDIATE, so writers already take turns.
    """
    if session.bind.dialect.name != "postgresql":
        return
    for name in sorted(set(names)):
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})
