"""The examples in the engine modules' docstrings run."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "iris_prompt.fhir_values",
        "iris_prompt.record",
        "iris_prompt.risk_flags",
        "iris_prompt.household",
        "iris_prompt.rules",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
