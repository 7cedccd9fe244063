"""A pytest plugin that runs only the tests the hazard log names and records each one's outcome.

`python -m pytest -p iris_prompt.safety.outcomes --safety-named=NAMED --safety-outcomes=OUT
FILES...`: NAMED is a JSON list of node ids (a test function, or one parameter of it); of the
tests collected from FILES, those not named are deselected; OUT receives a JSON object mapping
every collected node id that was named to "passed", "failed" or "skipped". A named node id
that matches no collected test is missing from OUT, so it can never count as green.

Pure helpers first (`named_by`, `worst`), then the hooks, which only pytest calls.
"""

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pytest is a test dependency; the hooks below only run inside it.
    import pytest

__all__ = ["named_by", "worst"]

_ORDER = ("passed", "skipped", "failed")


def named_by(collected: str, named: str) -> bool:
    """Whether the collected node id `collected` is (a parameter of) the named one.

    >>> named_by("tests/a.py::test_x[1]", "tests/a.py::test_x")
    True
    >>> named_by("tests/a.py::test_xy", "tests/a.py::test_x")
    False
    """
    return collected == named or collected.startswith(named + "[")


def worst(outcomes: Iterable[str]) -> str:
    """The outcome of several runs of one test: failed over skipped over passed."""
    return max(outcomes, key=_ORDER.index, default="missing")


_state: dict[str, Any] = {"named": (), "out": None, "outcomes": {}}


def pytest_addoption(parser: "pytest.Parser") -> None:
    group = parser.getgroup("safety-case")
    group.addoption("--safety-named", help="JSON file: the node ids the hazard log names")
    group.addoption("--safety-outcomes", help="JSON file to write the outcome of each")


def pytest_configure(config: "pytest.Config") -> None:
    named = config.getoption("--safety-named")
    if named:
        _state["named"] = tuple(json.loads(Path(named).read_text(encoding="utf-8")))
        _state["out"] = Path(config.getoption("--safety-outcomes"))


def pytest_collection_modifyitems(config: "pytest.Config", items: list["pytest.Item"]) -> None:
    if not _state["out"]:
        return
    keep = [i for i in items if any(named_by(i.nodeid, n) for n in _state["named"])]
    dropped = [i for i in items if i not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def pytest_runtest_logreport(report: "pytest.TestReport") -> None:
    if not _state["out"]:
        return
    if report.when == "call" or report.outcome != "passed":
        outcomes: dict[str, str] = _state["outcomes"]
        previous = outcomes.get(report.nodeid)
        outcome = report.outcome if previous is None else worst((previous, report.outcome))
        outcomes[report.nodeid] = outcome


def pytest_sessionfinish(session: "pytest.Session") -> None:  # noqa: ARG001 (pytest's signature)
    if _state["out"]:
        _state["out"].write_text(json.dumps(_state["outcomes"], indent=1), encoding="utf-8")
