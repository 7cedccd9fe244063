"""Fixtures shared by the API test modules: the engine's service, made once per module
(`service` with the tests' roomy household budget, `tight` with the product's), and `store`,
the service's store on each database engine. A module that needs another defines its own
fixture of that name, which takes precedence."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from iris_prompt.store.service import Store
from tests.api.engine_support import TIGHT_BUDGET, engine_service
from tests.api.store_support import open_store
from tests.conftest import LiveService
from tests.support.tokens import SigningKey


@pytest.fixture(scope="module")
def service(es384_key: SigningKey) -> Iterator[LiveService]:
    with engine_service(es384_key) as running:
        yield running


@pytest.fixture(scope="module")
def tight(es384_key: SigningKey) -> Iterator[LiveService]:
    """The service with the product's household budget, for the tests of that deadline."""
    with engine_service(es384_key, budget=TIGHT_BUDGET) as running:
        yield running


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Store:
    return open_store(store_url, tmp_path / "data")
