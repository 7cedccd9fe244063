"""The rules and what they read are pure: no web framework, no HTTP client, no I/O imports.

The alert-burden simulation runs these modules per patient without a server; the service's
I/O lives in household_lookup and services.
"""

from pathlib import Path

import pytest

from tests.support.imports import top_level_imports

PACKAGE = Path(__file__).resolve().parents[3] / "iris_prompt" / "engine"
PURE = ["record", "household", "risk_flags", "rules", "card_text", "cards"]
FORBIDDEN = {"fastapi", "starlette", "httpx", "uvicorn", "asyncio", "socket", "urllib", "os"}


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_nothing_that_does_io(module: str) -> None:
    imported = top_level_imports(PACKAGE / f"{module}.py")
    assert imported & FORBIDDEN == set()
