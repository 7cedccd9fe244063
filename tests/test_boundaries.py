"""Architecture rules: the protocol package never depends on the domain package."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    return names


def test_cds_hooks_never_imports_iris_prompt() -> None:
    offending = {m for m in imported_modules("cds_hooks") if m.split(".")[0] == "iris_prompt"}
    assert offending == set()
