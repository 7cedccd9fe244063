"""The examples in the public docstrings run."""

import doctest
import importlib

import pytest

MODULES = [
    "cds_hooks.models",
    "cds_hooks.request",
    "cds_hooks.response",
    "cds_hooks.discovery",
    "cds_hooks.prefetch",
    "cds_hooks.jws",
    "cds_hooks.jwks",
    "cds_hooks.feedback",
    "cds_hooks.logs",
    "cds_hooks.http",
    "iris_prompt.urls",
    "iris_prompt.ops.metrics",
    "iris_prompt.ops.observe",
    "iris_prompt.codesets.codes",
    "iris_prompt.codesets.files",
    "iris_prompt.codesets.manifest",
    "iris_prompt.template.recording",
    "iris_prompt.template.codeset_check",
    "iris_prompt.template.questionnaire",
    "iris_prompt.safety.hazard_log",
    "iris_prompt.safety.outcomes",
    "iris_prompt.template.dash",
    "iris_prompt.template.links",
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
