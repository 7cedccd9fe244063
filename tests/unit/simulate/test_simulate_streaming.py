"""The simulation tallies each patient's result as it comes and lets it go: docs/simulation.md
promises the population is never held in memory, so only each patient's id and the file they
were counted from may stay until the run ends. A patient in two Bundle files is still counted
from the file first by name, whichever worker finishes first."""

import shutil
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iris_prompt.simulate import cli as simulate_cli
from iris_prompt.simulate.cli import simulate
from iris_prompt.simulate.population import Population, Skipped
from iris_prompt.simulate.run import PatientResult, run_population
from tests.unit.simulate.conftest import AS_OF, BUNDLES
from tests.unit.simulate.slow_reader import SlowReader


class _Traced(PatientResult):
    """A result that can be watched with a weak reference (`PatientResult` has slots only)."""

    __slots__ = ("__weakref__",)


def test_each_patients_result_is_let_go_once_it_is_tallied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alive: weakref.WeakSet[PatientResult] = weakref.WeakSet()
    most_alive = 0

    def traced(*args: Any, **kwargs: Any) -> Iterator[PatientResult | Skipped]:
        nonlocal most_alive
        for result in run_population(*args, **kwargs):
            if isinstance(result, PatientResult):
                result = _Traced(result.patient_id, result.new, result.old, result.where)
                alive.add(result)
            yield result
            del result
            # The caller has tallied it and asks for the next: only the one it last had may
            # still be alive.
            most_alive = max(most_alive, len(alive))

    monkeypatch.setattr(simulate_cli, "run_population", traced)
    report = simulate(BUNDLES, as_of=AS_OF, workers=1)
    assert report.new.records == 36 and not report.skipped
    assert most_alive == 1, f"{most_alive} of {report.new.records} patients' results held at once"


def test_a_patient_in_two_files_is_counted_from_the_first_by_name_when_it_finishes_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pop-01.json is read slowly, so its worker finishes it after the other worker has
    finished the copy that comes after it by name (and more)."""
    folder = tmp_path / "p"
    shutil.copytree(BUNDLES, folder)
    shutil.copy(folder / "pop-01.json", folder / "pop-01b.json")
    opened = simulate_cli.open_population

    def slow_first(path: Path, mapper: Any = map) -> Population:
        population = opened(path, mapper)
        population.reader = SlowReader(frozenset({"pop-01.json"}), seconds=0.5)
        return population

    monkeypatch.setattr(simulate_cli, "open_population", slow_first)
    report = simulate(folder, as_of=AS_OF, workers=2)
    assert report.new.records == 36 and report.new.enquiry == 18
    assert [(s.where, s.reason) for s in report.skipped] == [
        ("pop-01b.json", "the same patient as pop-01.json (its Patient id): counted once"),
    ]
