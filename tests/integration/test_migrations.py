"""The migrations build exactly the schema the models describe: tables, columns, indexes, constraints."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import Store
from storage.models import Base


def differences(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return compare_metadata(context, Base.metadata)


async def test_the_migrated_schema_matches_the_models(store: Store):
    async with store.engine.connect() as connection:
        found = await connection.run_sync(differences)
    assert found == []
