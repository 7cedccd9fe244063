"""The code-set values: members, category settings, a code set, the three sets together.

Plain frozen data with an O(1) index; no I/O. Reading and checking files is in
`codeset_validation` (pure) and `codesets` (the thin loader).

Exceptions:

    CodeSetError          one or more problems in code-set files; `.problems` lists them all
"""

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from iris_prompt.codesets.codes import CTV3, READ_V2, SNOMED_CT, normalise_code

__all__ = [
    "KNOWN_ABUSE_FOR_PATIENT",
    "PURPOSES",
    "RECORDING_CATEGORIES",
    "STATUSES",
    "CategorySettings",
    "CodeSet",
    "CodeSetError",
    "CodeSets",
    "Member",
    "Problem",
]

# What a set is for. The engine reads "trigger" and "known-abuse"; the template writes "recording".
PURPOSES = ("trigger", "recording", "known-abuse")
STATUSES = ("draft", "active", "retired")

# The recording set's categories. The template and the engine look codes up by these names, so a
# recording set must have every one of them (with at least one code each).
RECORDING_CATEGORIES = (
    "enquiry-made",
    "enquiry-declined",
    "enquiry-not-made",
    "victim",
    "history",
    "abuse-physical",
    "abuse-sexual",
    "abuse-emotional",
    "abuse-financial",
    "risk-checklist",
    "risk-classification",
    "referral-advocate",
    "referral-agency",
    "referral-marac",
    "referral-child-safeguarding",
    "information-given",
    "online-access-review",
    "mappa",
)


# The known-abuse categories that mean abuse is known for *this* patient (the engine then shows
# the review-safety card instead of a first enquiry). Any other category of the known-abuse set,
# such as "abuse-in-household", says something less: see codesets/README.md.
KNOWN_ABUSE_FOR_PATIENT = ("victim", "history", "at-risk", "marac", "police-report")

_SYSTEM_ORDER = {SNOMED_CT: 0, READ_V2: 1, CTV3: 2}


@dataclass(frozen=True, slots=True)
class Member:
    """One code in a set. `system` is the code-system URI; `code` its stored form."""

    system: str
    code: str
    term: str
    category: str
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class CategorySettings:
    """Per-category settings from the manifest.

    `lookback` is how far back in the record an entry counts; None means the whole record.
    `lookback_text` keeps the words the manifest used ("2 years"), `reason` why.
    `min_entries` is how many entries of the category, on different days inside the lookback,
    it takes to count at all (1 for most; 3 for urinary tract infections, whose recurrence is
    the indicator).
    """

    lookback: datetime.timedelta | None
    title: str = ""
    reason: str = ""
    lookback_text: str = "whole record"
    min_entries: int = 1


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong (or worth a look) in a code-set file, located for the person fixing it."""

    file: str
    message: str
    line: int | None = None
    column: str | None = None
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", {self.column}"
        label = "" if self.severity == "error" else "warning: "
        return f"{where}: {label}{self.message}"


class CodeSetError(ValueError):
    """Code-set files that cannot be used. The message lists every problem, one per line."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the code sets:\n{lines}")


@dataclass(frozen=True, eq=True)
class CodeSet:
    """One versioned code set: its manifest, categories and members, indexed by (system, code).

    Members are kept in a canonical order (category as the manifest lists them, then system,
    then code), so two sets with the same content compare equal however their files were sorted.
    """

    id: str
    title: str
    version: str
    status: str
    owner: str
    last_reviewed: datetime.date
    next_review_due: datetime.date
    purpose: str
    description: str
    categories: Mapping[str, CategorySettings]
    members: tuple[Member, ...]
    _index: Mapping[tuple[str, str], Member] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        categories = MappingProxyType(dict(self.categories))
        order = {name: position for position, name in enumerate(categories)}
        members = tuple(
            sorted(
                self.members,
                key=lambda m: (
                    order.get(m.category, len(order)),
                    m.category,
                    _SYSTEM_ORDER.get(m.system, len(_SYSTEM_ORDER)),
                    m.system,
                    m.code,
                ),
            )
        )
        object.__setattr__(self, "categories", categories)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "_index", {(m.system, m.code): m for m in members})

    __hash__ = None  # type: ignore[assignment]  # holds mappings; compare, never hash

    def lookup(self, system: str, code: str) -> Member | None:
        """The member for a coding from a record, or None. O(1).

        A Read v2 code with its 2-character term code (``14X3.00``) finds ``14X3.``.
        """
        return self._index.get((system, normalise_code(system, code)))

    def in_category(self, category: str) -> tuple[Member, ...]:
        """The members of one category, in canonical order."""
        return tuple(m for m in self.members if m.category == category)

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)


@dataclass(frozen=True, slots=True)
class CodeSets:
    """The three sets the service runs on, loaded and checked together."""

    trigger: CodeSet
    recording: CodeSet
    known_abuse: CodeSet

    def versions(self) -> dict[str, str]:
        """Set id to version, for /readyz and the discovery description."""
        return {s.id: s.version for s in self}

    def __iter__(self) -> Iterator[CodeSet]:
        return iter((self.trigger, self.recording, self.known_abuse))
