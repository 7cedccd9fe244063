"""The engine's service for the engine's API test modules, made once per module: `service`
with the tests' roomy household budget, `tight` with the product's. A module that needs
another service defines its own fixture of that name, which takes precedence."""

from collections.abc import Iterator

import pytest

from tests.api.engine_support import TIGHT_BUDGET, engine_service
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
