"""Alembic's environment for the store: the connection comes from `database.upgrade`."""

from alembic import context

# The register's tables live in the store's database and its migrations (imported for Base).
from iris_prompt.register import tables as _register_tables  # noqa: F401
from iris_prompt.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place: batch mode copies the table.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
