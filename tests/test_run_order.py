"""The order `make test` hands modules to its workers: the slow ones first, each whole."""

import pytest

from tests.conftest import PROJECT_ROOT


def test_slow_modules_come_first_and_each_module_stays_in_one_piece(
    request: pytest.FixtureRequest,
) -> None:
    """The collection this run made, after the ordering hook: slow modules lead (their processes
    overlap the quick modules, and none is left for last), and each module's tests are together
    (a module is marked slow as a whole, never one test of it)."""
    items = request.session.items
    slow = [item.get_closest_marker("slow") is not None for item in items]
    assert slow == sorted(slow, reverse=True), "a quick module is ordered before a slow one"
    modules = [item.path for item in items]
    runs = [path for i, path in enumerate(modules) if i == 0 or modules[i - 1] != path]
    assert len(runs) == len(set(runs)), "a module's tests are not together"


def test_make_test_hands_each_worker_whole_modules() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    (command,) = [line for line in makefile.splitlines() if "-m pytest" in line]
    # In the collection's order: by default xdist hands out the modules with most tests first.
    assert "-n 2 --dist loadfile --no-loadscope-reorder" in command, command
