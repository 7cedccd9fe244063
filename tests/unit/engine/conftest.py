"""The bundled code sets, loaded once per module for the engine's tests."""

import pytest

from iris_prompt.codesets.model import CodeSets
from tests.conftest import bundled_codesets


@pytest.fixture(scope="module")
def sets() -> CodeSets:
    return bundled_codesets().current
