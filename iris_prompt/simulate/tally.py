"""Counting what the rules decided over a population: pure data, no I/O, no patient data out.

An `Outcome` is the part of one patient's `rules.Decision` the simulation counts. A `Tally`
adds up outcomes for one code-set version; a `Comparison` adds up the patients whose cards
differ between two versions and the codes that moved them. Patient ids are kept (in memory
only) for the patients a comparison moves, so tests and callers can check exactly who moved;
no report ever prints them.

    >>> tally = Tally()
    >>> tally.add(Outcome(enquiry=True, triggers=(Hit("http://snomed.info/sct", "35489007",
    ...     "Depressive disorder", "depression"),)))
    >>> tally.considered, tally.enquiry, dict(tally.enquiry_by_category)
    (1, 1, {'depression': 1})
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Change", "Comparison", "Hit", "Outcome", "Tally", "percent"]


@dataclass(frozen=True, slots=True, order=True)
class Hit:
    """A code of a set that counted for a patient: the code, its sourced term, its category."""

    system: str
    code: str
    term: str
    category: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the rules decided for one patient, as far as the simulation counts it.

    `reason` is why the rules did not consider the patient for an enquiry or known-abuse card
    (under 16, deceased, age unknown); None for an adult the rules considered. A patient not
    considered may still get a MAPPA card (`mappa`): a clinician sees household risk whatever
    the patient's age. `triggers` are the distinct trigger codes that counted, `known` the
    distinct known-abuse codes.
    """

    reason: str | None = None
    enquiry: bool = False
    known_abuse: bool = False
    mappa: bool = False
    suppressed: bool = False
    triggers: tuple[Hit, ...] = ()
    known: tuple[Hit, ...] = ()


def percent(count: int, total: int) -> float:
    """`count` as a percentage of `total` (0 when there is no one to count)."""
    return round(100.0 * count / total, 1) if total else 0.0


def _categories(hits: Iterable[Hit]) -> set[str]:
    return {hit.category for hit in hits}


@dataclass
class Tally:
    """Counts over a population for one code-set version. Percentages are of `considered`."""

    records: int = 0
    considered: int = 0
    not_considered: Counter[str] = field(default_factory=Counter)
    enquiry: int = 0
    known_abuse: int = 0
    mappa: int = 0
    # MAPPA cards for patients not considered for an enquiry (under 16, age unknown): not in
    # `mappa`, whose percentage is of adults considered.
    mappa_not_considered: int = 0
    suppressed: int = 0
    # Patients with an enquiry prompt, per category and per code that counted for them (a
    # patient with depression and anxiety codes counts once in each).
    enquiry_by_category: Counter[str] = field(default_factory=Counter)
    enquiry_by_code: Counter[Hit] = field(default_factory=Counter)
    known_abuse_by_category: Counter[str] = field(default_factory=Counter)
    suppressed_by_category: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        self.records += 1
        if outcome.reason is not None:
            self.not_considered[outcome.reason] += 1
            self.mappa_not_considered += outcome.mappa
            return
        self.considered += 1
        if outcome.mappa:
            self.mappa += 1
        if outcome.enquiry:
            self.enquiry += 1
            self.enquiry_by_category.update(_categories(outcome.triggers))
            self.enquiry_by_code.update(set(outcome.triggers))
        if outcome.known_abuse:
            self.known_abuse += 1
            self.known_abuse_by_category.update(_categories(outcome.known))
        if outcome.suppressed:
            self.suppressed += 1
            self.suppressed_by_category.update(_categories(outcome.triggers + outcome.known))

    def top_codes(self, n: int | None = None) -> list[tuple[Hit, int]]:
        """The codes behind most enquiry prompts, most first (ties in code order)."""
        ranked = sorted(self.enquiry_by_code.items(), key=lambda item: (-item[1], item[0]))
        return ranked if n is None else ranked[:n]


@dataclass
class Change:
    """Patients who gain or lose one kind of card between two versions, and why.

    A patient who gains the card is put down to the codes that count for them under the new
    version and did not under the old (a code added, or a window widened); if none differ (the
    card came from a change elsewhere, such as a suppressing code), to every code that counts.
    Losing the card is the mirror image.
    """

    newly: set[str] = field(default_factory=set)
    no_longer: set[str] = field(default_factory=set)
    newly_by_category: Counter[str] = field(default_factory=Counter)
    newly_by_code: Counter[Hit] = field(default_factory=Counter)
    no_longer_by_category: Counter[str] = field(default_factory=Counter)
    no_longer_by_code: Counter[Hit] = field(default_factory=Counter)

    def add(
        self,
        patient_id: str,
        before: bool,
        after: bool,
        old_hits: tuple[Hit, ...],
        new_hits: tuple[Hit, ...],
    ) -> None:
        if before == after:
            return
        gained = after
        hits, other = (new_hits, old_hits) if gained else (old_hits, new_hits)
        other_codes = {(h.system, h.code) for h in other}
        cause = {h for h in hits if (h.system, h.code) not in other_codes} or set(hits)
        if gained:
            self.newly.add(patient_id)
            self.newly_by_category.update(_categories(cause))
            self.newly_by_code.update(cause)
        else:
            self.no_longer.add(patient_id)
            self.no_longer_by_category.update(_categories(cause))
            self.no_longer_by_code.update(cause)


@dataclass
class Comparison:
    """The difference two code-set versions make: enquiry prompts and known-abuse cards."""

    enquiry: Change = field(default_factory=Change)
    known_abuse: Change = field(default_factory=Change)

    def add(self, patient_id: str, old: Outcome, new: Outcome) -> None:
        self.enquiry.add(patient_id, old.enquiry, new.enquiry, old.triggers, new.triggers)
        self.known_abuse.add(patient_id, old.known_abuse, new.known_abuse, old.known, new.known)
