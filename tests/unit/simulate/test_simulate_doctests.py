"""The examples in the simulation modules' docstrings run."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["iris_prompt.simulate.population", "iris_prompt.simulate.tally"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
