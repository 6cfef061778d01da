"""The few places where SQLite and PostgreSQL need different SQL, one branch per dialect."""
from __future__ import annotations

from sqlalchemy import func, literal_column, text
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(dialect: str, model, conflict_columns: list[str]):
    """INSERT … ON CONFLICT (cols) DO NOTHING for either dialect."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing(index_elements=conflict_columns)


def joined_strings(expression, separator: str = ","):
    """aggregate_strings with its separator written into the SQL: group_concat(x, ',') / string_agg(x, ',').

    Given as a plain string, the separator is a parameter rendered into the SQL anew at every execution
    (a post-compile step that costs more than a short query itself); this one is compiled once."""
    if "'" in separator:
        raise ValueError("a separator with a quote cannot be written into the SQL")
    # aggregate_strings is typed as taking a str; any SQL expression serves
    return func.aggregate_strings(expression, literal_column(f"'{separator}'"))  # type: ignore[arg-type]


async def serialize(session, *names: str) -> None:
    """Let only one transaction at a time past this point for each name, until it ends.

    PostgreSQL: transaction-scoped advisory locks, taken in sorted order so two transactions that want
    the same names cannot deadlock. SQLite needs nothing: every transaction there begins with
    BEGIN IMMEDIATE, so writers already take turns.
    """
    if session.bind.dialect.name != "postgresql":
        return
    held = _held(session)
    wanted = sorted(set(names) - held)  # taking a lock again in its transaction changes nothing
    if len(wanted) == 1:
        await session.execute(LOCK_ONE, {"name": wanted[0]})
    elif wanted:
        await session.execute(LOCK_SORTED, {"names": wanted})  # one round trip; unnest keeps the array's order
    if wanted and session.sync_session.get_nested_transaction() is None:  # a savepoint's may be rolled back
        session.info[HELD] = (session.sync_session.get_transaction(), held | set(wanted))


LOCK_ONE = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
LOCK_SORTED = text("SELECT pg_advisory_xact_lock(hashtextextended(name, 0)) "
                   "FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS wanted(name, n) ORDER BY n")
HELD = "advisory_locks"  # a session's info: (its transaction, the names locked in it)


def _held(session) -> set[str]:
    """The names this session's current transaction has locked already."""
    transaction, names = session.info.get(HELD, (None, set()))
    current = session.sync_session.get_transaction()
    return names if current is not None and transaction is current else set()
