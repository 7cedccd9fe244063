"""The rules and what they read are pure: no web framework, no HTTP client, no I/O imports.

The alert-burden simulation runs these modules per patient without a server; the service's
I/O lives in household_lookup and services.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "iris_prompt"
PURE = ["record", "household", "risk_flags", "rules", "cards"]
FORBIDDEN = {"fastapi", "starlette", "httpx", "uvicorn", "asyncio", "socket", "urllib", "os"}


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_that_does_io(module: str) -> None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported & FORBIDDEN == set()
    assert "iris_prompt.services" not in ast.dump(tree)
