"""The examples in the engine modules' docstrings run."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "iris_prompt.engine.fhir_values",
        "iris_prompt.engine.record",
        "iris_prompt.engine.risk_flags",
        "iris_prompt.engine.membership",
        "iris_prompt.engine.household",
        "iris_prompt.engine.household_plan",
        "iris_prompt.engine.rules",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
