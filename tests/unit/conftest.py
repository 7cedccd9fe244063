from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from iris_prompt.store.database import make_engine


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """An upgraded store on SQLite and on PostgreSQL (for the store's and the register's tests)."""
    made = make_engine(store_url)
    yield made
    made.dispose()
