"""Many rows into one table with one executemany, for imports.

Core `insert()` with a list of dicts builds and type-converts every parameter of every row in Python:
for a 10 000-member import that was most of the time the import took, while the rows share most of
their values (one instant, one status, one expiry). Here each column's own bind processor still
converts every value, so the driver gets exactly what Core would give it, but a value repeated down a
column is converted once, and the statement is compiled once.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table` in the session's transaction.

    Columns left out get their Python-side default, as with Core; a default that is a SQL expression
    is refused (nothing needs one yet). Server defaults apply as usual.
    """
    if not rows:
        return
    keys = list(rows[0])
    defaults = {column.key: _default(column) for column in table.columns
                if column.default is not None and column.key not in rows[0]}
    connection = await session.connection()
    dialect = connection.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=keys + list(defaults))
    order = compiled.positiontup
    if order is None or sorted(order) != sorted(keys + list(defaults)):
        raise ValueError(f"cannot insert positionally into {table.name} with {dialect.name}")
    convert = {key: _converter(table.c[key], dialect) for key in order}
    fixed = {key: convert[key](value) for key, value in defaults.items()}
    plan = [(key, convert[key], key in fixed) for key in order]
    params = [tuple(fixed[key] if is_fixed else to_driver(row[key]) for key, to_driver, is_fixed in plan)
              for row in rows]
    await connection.exec_driver_sql(compiled.string, params)


def _default(column) -> Any:
    default = column.default
    if default.is_scalar:
        return default.arg
    if default.is_callable:
        return default.arg(None)  # list, dict: SQLAlchemy wraps them to take an execution context
    raise ValueError(f"{column} has a SQL default; insert it with Core")


def _converter(column, dialect) -> Callable[[Any], Any]:
    """The column's bind processor, remembering what it made of each hashable value."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return _same
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            seen[value] = converted = process(value)
            return converted
        except TypeError:  # a dict or list for a JSON column: converted each time
            return process(value)

    return convert


def _same(value: Any) -> Any:
    return value
