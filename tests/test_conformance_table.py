"""docs/conformance.md stays true: every service-side requirement row of CDS Hooks 2.0 is in
it once, at its level, and every row marked met names tests that exist (the suite being green
makes them passing tests). The counts the document states are the table's.

A named test is resolved by importing its module and finding the function, not by collecting
the suite: fast, and a renamed or deleted test fails here.
"""

import csv
import importlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TABLE = PROJECT_ROOT / "docs" / "conformance.md"
VERDICTS = {"met", "not applicable", "deployment", "not met"}
NODE_ID = re.compile(r"`([^`]+::[^`]+)`")
# Levels counted together in the document's "Counts." paragraph.
GROUPS = {
    "SHALL and SHALL NOT": ("SHALL", "SHALL NOT"),
    "SHOULD and SHOULD NOT": ("SHOULD", "SHOULD NOT"),
    "MAY": ("MAY",),
    "DEPRECATED": ("DEPRECATED",),
}


@dataclass(frozen=True)
class Row:
    row: str
    level: str
    verdict: str
    tests: tuple[str, ...]


def requirements(reference_dir: Path) -> dict[str, str]:
    """Row id -> level, from the requirement list."""
    path = reference_dir / "cds-hooks" / "cds-hooks-2.0-service-requirements.tsv"
    with path.open(encoding="utf-8", newline="") as lines:
        return {row[0].strip(): row[1].strip() for row in csv.reader(lines, delimiter="\t") if row}


def table() -> list[Row]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[0].isdigit():
            continue
        row, level, _text, verdict, tests, _note = cells
        rows.append(Row(row, level, verdict, tuple(NODE_ID.findall(tests))))
    return rows


def missing_test(node_id: str) -> str | None:
    """Why `node_id` names no test function, or None when it does."""
    path, _, name = node_id.partition("::")
    if "[" in name or "::" in name:
        return "name the test function itself (no parameters, no classes)"
    file = PROJECT_ROOT / path
    if not (path.startswith("tests/") and path.endswith(".py") and file.is_file()):
        return "no such test file"
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    found = getattr(module, name, None)
    if not (name.startswith("test_") and callable(found)):
        return "no such test function"
    return None


def test_every_requirement_row_is_in_the_table_once_at_its_level(reference_dir: Path) -> None:
    listed = requirements(reference_dir)
    rows = table()
    repeated = [row for row, n in Counter(r.row for r in rows).items() if n > 1]
    assert repeated == [], f"rows listed more than once: {repeated}"
    assert sorted(r.row for r in rows) == sorted(listed), "the table must list every row"
    wrong = [(r.row, r.level, listed[r.row]) for r in rows if r.level != listed[r.row]]
    assert wrong == [], f"levels differing from the requirement list: {wrong}"
    unknown = [(r.row, r.verdict) for r in rows if r.verdict not in VERDICTS]
    assert unknown == [], f"verdicts must be one of {sorted(VERDICTS)}: {unknown}"


def test_every_met_row_names_tests_that_exist() -> None:
    rows = table()
    assert rows, "no table rows found in docs/conformance.md"
    untested = [r.row for r in rows if r.verdict == "met" and not r.tests]
    assert untested == [], f"rows marked met with no test behind them: {untested}"
    problems = {
        node_id: why
        for r in rows
        for node_id in r.tests
        if (why := missing_test(node_id)) is not None
    }
    assert problems == {}


def test_the_stated_counts_are_the_tables() -> None:
    text = TABLE.read_text(encoding="utf-8")
    rows = table()
    for group, levels in GROUPS.items():
        counts = Counter(r.verdict for r in rows if r.level in levels)
        total = sum(counts.values())
        stated = re.search(rf"{group} rows \({total}\): ([^.]*)\.", text)
        assert stated, f"the Counts paragraph must give {group} rows ({total})"
        said = {verdict: int(n) for n, verdict in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", stated[1])}
        assert {v: n for v, n in said.items() if n} == dict(counts), group


@pytest.mark.parametrize(
    ("node_id", "why"),
    [
        ("tests/test_conformance_table.py::test_every_met_row_names_tests_that_exist", None),
        ("tests/test_conformance_table.py::test_no_such_thing", "no such test function"),
        ("tests/no_such_file.py::test_x", "no such test file"),
        ("tests/test_conformance_table.py::table", "no such test function"),
        ("tests/test_conformance_table.py::test_x[a]", "name the test function itself"),
    ],
)
def test_a_named_test_is_resolved_or_refused(node_id: str, why: str | None) -> None:
    found = missing_test(node_id)
    assert found == why if why is None else (found or "").startswith(why)
