"""Running the service's own rules over a population, one patient at a time, on every core.

For each patient this does what the service (`services.Engine`) does for a clinician's call:
`record.read_record` over the resources the service is given, `rules.refusal` (a deceased
patient: no cards and no household lookup), the service's own household plan
(`household_plan.household_plan`) answered from the population where the service asks the FHIR
server, and `rules.decide`. There is no second copy of any rule here: what is counted is what a
clinician would see on that day.

Worker processes (one per core) each load the code sets once, read their patients' records
themselves and send back only the small `Outcome`s. A record that cannot be read, or that the
rules cannot read, is skipped and listed; it never stops the run.
"""

import datetime
import gc
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from iris_prompt.codesets.files import load_codesets
from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.household import Household
from iris_prompt.engine.household_plan import (
    FlagsOf,
    PatientById,
    PatientByNhsNumber,
    RegisterFlagsOf,
    Request,
    household_plan,
)
from iris_prompt.engine.membership import nhs_number
from iris_prompt.engine.record import CodedEntry, read_record
from iris_prompt.engine.rules import Decision, RuleSettings, decide, refusal
from iris_prompt.simulate.population import (
    Mapper,
    PatientReader,
    PatientResources,
    Population,
    Shared,
    Skipped,
    group_members,
    reference_id,
)
from iris_prompt.simulate.tally import Hit, Outcome

__all__ = [
    "USER_TYPE",
    "Evaluator",
    "HouseholdIndex",
    "PatientResult",
    "RunSettings",
    "choose_workers",
    "scanner",
    "outcome_from",
    "run_population",
]

# The simulation sees what a clinician opening each record would see.
USER_TYPE = "Practitioner"
# Below this many bytes of records (about 40 Synthea patients), starting worker processes
# costs more than it saves.
POOL_THRESHOLD_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What every worker needs to decide: the code-set folders, the time of the simulated
    call (in the practice's time zone, as the service's clock), the rule settings."""

    codesets_dir: Path
    compare_dir: Path | None
    now: datetime.datetime
    rules: RuleSettings

    @property
    def as_of(self) -> datetime.date:
        return self.now.date()


@dataclass(frozen=True, slots=True)
class PatientResult:
    """One patient's outcome under the new code sets and, when comparing, the old ones;
    `where` names the file (and line) the record was read from."""

    patient_id: str
    new: Outcome
    old: Outcome | None = None
    where: str = ""


def _hits(entries: tuple[CodedEntry, ...]) -> tuple[Hit, ...]:
    seen: dict[tuple[str, str], Hit] = {}
    for e in entries:
        seen.setdefault((e.system, e.code), Hit(e.system, e.code, e.term, e.category))
    return tuple(seen.values())


def outcome_from(decision: Decision) -> Outcome:
    """The part of a decision the simulation counts."""
    return Outcome(
        # Not considered for an enquiry: refused outright, or withheld (under 16, age unknown)
        # with at most a MAPPA card.
        reason=decision.no_cards_reason or decision.enquiry_withheld,
        enquiry=decision.enquiry,
        known_abuse=decision.known_abuse,
        mappa=bool(decision.mappa),
        suppressed=decision.suppressed_by is not None,
        triggers=_hits(decision.triggers),
        known=_hits(decision.known_abuse_entries),
    )


class HouseholdIndex:
    """The household resources the service would have for one patient, from the population:
    the Groups they are in (`Group?member=`) and their RelatedPersons (prefetch), and the
    Patients and Flags of the members `household_lookup` would fetch."""

    def __init__(self, shared: Shared) -> None:
        self.groups: dict[str, list[dict[str, Any]]] = {}
        for group in shared.groups:
            for member_id in dict.fromkeys(group_members(group)):
                self.groups.setdefault(member_id, []).append(group)
        self.related: dict[str, list[dict[str, Any]]] = {}
        for person in shared.related_persons:
            patient_id = reference_id((person.get("patient") or {}).get("reference"))
            if patient_id is not None:
                self.related.setdefault(patient_id, []).append(person)
        self.patients = shared.patients
        self.by_number = {nhs_number(p): p for p in shared.patients.values() if nhs_number(p)}
        self.flags: dict[str, list[dict[str, Any]]] = {}
        for flag in shared.flags:
            subject = reference_id((flag.get("subject") or {}).get("reference"))
            if subject is not None:
                self.flags.setdefault(subject, []).append(flag)

    def answer(self, request: Request) -> list[dict[str, Any]]:
        """What the FHIR server would answer to one request of the household plan."""
        match request:
            case PatientById(patient_id):
                found = self.patients.get(patient_id)
                return [found] if found is not None else []
            case FlagsOf(patient_id):
                return list(self.flags.get(patient_id, ()))
            case PatientByNhsNumber(number):
                found = self.by_number.get(number)
                return [found] if found is not None else []
            case RegisterFlagsOf():
                return []  # the simulation has no shared register (its plan never asks)

    def household(self, patient_id: str, now: datetime.datetime) -> Household:
        """As the service's household lookup (`engine.lookup`): the same plan, answered from
        the population, at the time of the simulated call."""
        plan = household_plan(
            patient_id=patient_id,
            today=now.date(),
            groups=self.groups.get(patient_id, []),
            related_persons=self.related.get(patient_id, []),
            now=now,
        )
        try:
            requests = next(plan)
            while True:
                requests = plan.send([self.answer(r) for r in requests])
        except StopIteration as done:
            household: Household = done.value
            return household


class Evaluator:
    """Decides for one patient at a time with the service's rules, under one or two versions."""

    def __init__(
        self, shared: Shared, settings: RunSettings, new: CodeSets, old: CodeSets | None
    ) -> None:
        self.households = HouseholdIndex(shared)
        self.settings = settings
        self.new, self.old = new, old

    def _outcomes(self, resources: PatientResources) -> list[Outcome]:
        """The outcome under each version (new first), as the service would decide."""
        settings = self.settings
        versions = [self.new] if self.old is None else [self.new, self.old]
        records = [read_record(resources.resources, codesets) for codesets in versions]
        # The refusal rules read only the Patient, the same under every version.
        refused = refusal(records[0], settings=settings.rules, user_type=USER_TYPE)
        if refused is not None:
            return [Outcome(reason=refused) for _ in versions]
        household = self.households.household(resources.patient_id, settings.now)
        return [
            outcome_from(
                decide(
                    record,
                    codesets,
                    now=settings.now,
                    household=household,
                    settings=settings.rules,
                    user_type=USER_TYPE,
                )
            )
            for record, codesets in zip(records, versions, strict=True)
        ]

    def evaluate(self, resources: PatientResources) -> PatientResult | Skipped:
        try:
            outcomes = self._outcomes(resources)
        except Exception as error:  # counted and listed, never silent: see Skipped
            # The type only: an exception's message may quote the record.
            reason = f"the rules could not read it ({type(error).__name__})"
            return Skipped(resources.where, reason)
        old = outcomes[1] if len(outcomes) > 1 else None
        return PatientResult(resources.patient_id, outcomes[0], old, resources.where)


# --- one process or several -------------------------------------------------------------------
_worker: tuple[PatientReader, Evaluator] | None = None


def _load(settings: RunSettings) -> tuple[CodeSets, CodeSets | None]:
    new = load_codesets(settings.codesets_dir)
    old = None if settings.compare_dir is None else load_codesets(settings.compare_dir)
    return new, old


def _start_worker(reader: PatientReader, shared: Shared, settings: RunSettings) -> None:
    """Each worker loads the code sets once, at start."""
    global _worker
    _worker = (reader, Evaluator(shared, settings, *_load(settings)))


def _work(unit: Any) -> PatientResult | Skipped | None:
    if _worker is None:
        raise RuntimeError("a simulation worker was used before it was started")
    reader, evaluator = _worker
    return _evaluate(reader, evaluator, unit)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Parsed JSON holds no reference cycles, so Python's cycle collector has nothing to find in
    a record; left on while orjson builds one of 100,000 objects, it walks the growing tree
    again and again (measured: a Synthea record took three times as long). Off while a patient
    is read, decided and freed; back on between patients, so any cycle is still collected."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _evaluate(
    reader: PatientReader, evaluator: Evaluator, unit: Any
) -> PatientResult | Skipped | None:
    with _no_cycle_collection():
        resources = reader.read(unit)
        if resources is None or isinstance(resources, Skipped):
            return resources
        result = evaluator.evaluate(resources)
        del resources  # freed here, while collection is off, so nothing is left to walk
    return result


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  # not on Linux
        return os.cpu_count() or 1


def choose_workers(path: Path, workers: int | None = None) -> int:
    """`workers` if given; else every core, unless the population is too small to gain."""
    if workers:
        return workers
    try:
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    except OSError:
        size = 0
    return default_workers() if size >= POOL_THRESHOLD_BYTES else 1


def _context() -> BaseContext:
    # forkserver: workers start from a clean process that has imported this module once, not
    # from a copy of a parent that may hold threads and locks; spawn where it is missing.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")  # pragma: no cover  # not on Linux


@contextmanager
def _pool(workers: int, *initialiser: Any) -> Iterator[Pool]:
    """A pool of `workers` processes, closed and joined when the block ends: its workers
    finish and exit by themselves. (`Pool`'s own `with` terminates them, which can stop one
    holding the task queue's lock and leave the others waiting on it for ever.) Terminated only
    when the block fails or its caller stops early."""
    pool = _context().Pool(workers, *initialiser)
    try:
        yield pool
        pool.close()
        pool.join()
    finally:
        pool.terminate()  # nothing left to stop after a join


def _chunk(count: int, workers: int) -> int:
    # Small chunks keep both cores busy to the end; each patient is milliseconds of work.
    return max(1, min(16, count // (workers * 32)))


@contextmanager
def scanner(workers: int) -> Iterator[Mapper]:
    """A `map` for pass one: the builtin, or a pool of `workers` processes."""
    if workers <= 1:
        yield map
        return
    with _pool(workers) as pool:

        def parallel(function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
            listed = list(items)
            return pool.imap_unordered(function, listed, _chunk(len(listed), workers))

        yield parallel


def run_population(
    population: Population,
    settings: RunSettings,
    *,
    workers: int = 1,
    progress: Callable[[int], None] = lambda _done: None,
) -> Iterator[PatientResult | Skipped]:
    """Each patient's result (or why their record was skipped), in the order of
    `population.units` whichever worker finishes first, from `workers` processes (1: in this
    process). A result that comes early waits in the pool only until those before it are in."""
    units = population.units
    done = 0
    if workers <= 1:
        evaluator = Evaluator(population.shared, settings, *_load(settings))
        try:
            for unit in units:
                result = _evaluate(population.reader, evaluator, unit)
                done += 1
                progress(done)
                if result is not None:
                    yield result
        finally:
            population.reader.close()
        return
    initargs = (population.reader, population.shared, settings)
    with _pool(workers, _start_worker, initargs) as pool:
        for result in pool.imap(_work, units, _chunk(len(units), workers)):
            done += 1
            progress(done)
            if result is not None:
                yield result
