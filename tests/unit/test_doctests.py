"""The examples in the public docstrings run."""

import doctest
import importlib

import pytest

MODULES = [
    "cds_hooks.models",
    "cds_hooks.discovery",
    "cds_hooks.prefetch",
    "cds_hooks.feedback",
    "cds_hooks.logs",
    "cds_hooks.router",
    "iris_prompt.canonical",
    "iris_prompt.codes",
    "iris_prompt.codesets",
    "iris_prompt.recording",
    "iris_prompt.recording_check",
    "iris_prompt.template",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module,
        extraglobs=vars(importlib.import_module("cds_hooks"))
        | {"httpx": importlib.import_module("httpx")},
    )
    assert result.failed == 0 and result.attempted > 0
