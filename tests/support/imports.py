"""What a module imports, read from its source (no import, so no side effects)."""

import ast
from pathlib import Path


def top_level_imports(path: Path) -> set[str]:
    """The top-level package of every absolute import in the file at `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    return imported
