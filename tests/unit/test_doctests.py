"""The examples in the docstrings run: every module of the two packages that has one."""

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = re.compile(r"^\s*>>> ", re.MULTILINE)


def modules_with_examples() -> list[str]:
    found = []
    for package in ("cds_hooks", "iris_prompt"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if EXAMPLE.search(path.read_text(encoding="utf-8")):
                parts = path.relative_to(ROOT).with_suffix("").parts
                found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = modules_with_examples()


def test_the_examples_are_found() -> None:
    """The search sees the modules it must (a change to it that found none would pass)."""
    assert {"cds_hooks.http", "iris_prompt.engine.rules", "iris_prompt.simulate.tally"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module,
        extraglobs=vars(importlib.import_module("cds_hooks"))
        | {"httpx": importlib.import_module("httpx")},
    )
    assert result.failed == 0 and result.attempted > 0
