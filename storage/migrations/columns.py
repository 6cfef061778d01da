"""Schema steps the migrations share."""
from __future__ import annotations

from alembic import op


def drop_columns(table: str, *names: str) -> None:
    """Drop columns in place. On SQLite a batch step would copy the table, drop the old one and rename the copy,
    and with foreign keys on, that drop takes along (ON DELETE CASCADE) every row that points at the table:
    dropping `person.erased_at` that way deleted every address. SQLite drops a plain column itself (3.35+)."""
    for name in names:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{name}"')
        else:
            op.drop_column(table, name)
