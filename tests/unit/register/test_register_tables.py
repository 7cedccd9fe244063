"""The register's migration (0003) makes exactly the tables its models describe, on SQLite and
on a real PostgreSQL, so a flag written by one worker reads back the same in another."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from iris_prompt.register.tables import RegisterAccess, RegisterFlag, RegisterFlagVersion
from iris_prompt.store.models import Base

REGISTER_TABLES = {
    RegisterFlag.__tablename__,
    RegisterFlagVersion.__tablename__,
    RegisterAccess.__tablename__,
}


def _table_of(diff: object) -> str | None:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item if isinstance(item, tuple) else ():
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None) in REGISTER_TABLES:
            return str(table.name)
        if name in REGISTER_TABLES:
            return str(name)
        if isinstance(part, str) and part in REGISTER_TABLES:
            return part
    return None


def test_the_migration_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diffs if _table_of(d) is not None] == []
