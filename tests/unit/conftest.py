from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from iris_prompt.store.database import make_engine, upgrade


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An upgraded store on SQLite and on PostgreSQL (for the store's and the register's tests)."""
    made = make_engine(database_url)
    upgrade(made)
    yield made
    made.dispose()
