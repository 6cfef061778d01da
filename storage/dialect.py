"""The few places where SQLite and PostgreSQL need different SQL, one branch per dialect."""
from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(dialect: str, model, conflict_columns: list[str]):
    """INSERT … ON CONFLICT (cols) DO NOTHING for either dialect."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing(index_elements=conflict_columns)
