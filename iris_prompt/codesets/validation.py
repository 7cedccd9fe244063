"""Checking code-set files: pure functions from file text to a `CodeSet` and a list of problems.

Used by the loader, the `iris-prompt codesets` command and CI, so all three say the same thing.
Every problem names the file, line and column, in words an ICB safeguarding lead can act on.
A manifest is checked by `manifest.py`, a members CSV by `members.py`; this module puts the two
together into a `CodeSet` and checks the sets against each other.

Rules (see codesets/README.md for the reasons):
- manifest: every field present and of the right kind; status draft/active/retired (retired
  cannot be loaded, draft is a warning); dates real, last review not in the future, next review
  after it (overdue is a warning); each category with a title, a lookback and the reason for it,
  and optionally `min_entries`, a whole number of at least 1 (default 1), other than 1 only in
  the trigger set (the engine counts entries per day for triggers alone; elsewhere it does
  nothing, a warning).
- members CSV: the six columns; system SNOMED CT / Read v2 / CTV3; code well formed for its
  system (SNOMED CT: syntax, partition, Verhoeff check digit; not an EMIS-local code); term,
  category (declared in the manifest) and source present; no code twice, and so never in two
  categories of one set.
- across sets: one set per purpose; no code both a trigger and a known-abuse code (the engine
  would prompt a first enquiry and report known abuse from the same entry), and no recording
  code is a trigger (the template's own entries would fire the prompt again). A code may be in
  both the recording and the known-abuse set: the template writes "victim of domestic abuse",
  which afterwards means abuse is known.

What this version of the program needs from the sets (the recording template's codes, terms and
categories) is not a rule of the files: `template.codeset_check.check_recording_set` checks it,
and the service and `iris-prompt codesets validate` apply it on top of these rules. So `diff`
can still compare with an older version written for an older template.
"""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from iris_prompt.codesets.codes import SYSTEM_NAMES
from iris_prompt.codesets.manifest import check_manifest
from iris_prompt.codesets.members import check_members
from iris_prompt.codesets.model import PURPOSES, CodeSet, Member, Problem

__all__ = ["Checked", "check_across_sets", "check_codeset"]


@dataclass
class Checked:
    """The outcome of checking one set: the set (None when it has errors) and every problem."""

    codeset: CodeSet | None
    problems: list[Problem]
    manifest_file: str
    members_file: str
    purpose: str | None = None
    members: list[Member] = field(
        default_factory=list
    )  # the rows that passed, even if others failed
    member_lines: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def check_codeset(
    manifest_text: str,
    members_text: str,
    *,
    manifest_file: str,
    members_file: str,
    today: datetime.date,
) -> Checked:
    """Check one manifest and its members CSV; build the `CodeSet` when there is no error."""
    checked = Checked(None, [], manifest_file, members_file)
    manifest = check_manifest(manifest_text, manifest_file, today, checked.problems)
    categories = manifest.get("categories", {})
    members = check_members(
        members_text, members_file, categories, checked.problems, checked.member_lines
    )
    checked.purpose, checked.members = manifest.get("purpose"), members
    if not checked.errors:
        checked.codeset = CodeSet(members=tuple(members), **manifest)
    return checked


def check_across_sets(checked: Sequence[Checked], *, folder: str = "(folder)") -> list[Problem]:
    """Problems between sets: one set per purpose, unique ids, codes with conflicting roles.

    Uses every row that passed its own checks, so a conflict is reported even while the same
    file has other errors.
    """
    problems: list[Problem] = []
    by_purpose: dict[str, list[Checked]] = {}
    for item in checked:
        if item.purpose is not None:
            by_purpose.setdefault(item.purpose, []).append(item)
    # Only say a purpose is missing when every manifest said what it is for.
    complete = all(item.purpose in PURPOSES for item in checked)
    for purpose in PURPOSES:
        found = by_purpose.get(purpose, [])
        if len(found) > 1:
            files = ", ".join(item.manifest_file for item in found)
            problems.append(Problem(files, f"{len(found)} sets have purpose {purpose!r}; keep one"))
        elif not found and complete:
            problems.append(
                Problem(folder, f"no code set has purpose {purpose!r}: the service needs one")
            )
    ids: dict[str, str] = {}
    for item in checked:
        if item.codeset is not None:
            if item.codeset.id in ids:
                problems.append(
                    Problem(
                        item.manifest_file,
                        f"id {item.codeset.id!r} is also the id of {ids[item.codeset.id]}",
                        column="id",
                    )
                )
            ids.setdefault(item.codeset.id, item.manifest_file)
    for trigger in by_purpose.get("trigger", [])[:1]:
        for other_purpose, why in (
            ("known-abuse", "a trigger cannot also mean abuse is already known"),
            ("recording", "the template's own entries would fire the prompt again"),
        ):
            for other in by_purpose.get(other_purpose, [])[:1]:
                problems.extend(_conflicts(trigger, other, why))
    return problems


def _conflicts(trigger: Checked, other: Checked, why: str) -> list[Problem]:
    problems: list[Problem] = []
    others = {(m.system, m.code): m for m in other.members}
    for member in trigger.members:
        key = (member.system, member.code)
        if key in others:
            problems.append(
                Problem(
                    trigger.members_file,
                    f"{SYSTEM_NAMES[member.system]} {member.code} is also in "
                    f"{other.members_file} (line {other.member_lines.get(key, '?')}, category "
                    f"{others[key].category!r}): {why}",
                    line=trigger.member_lines.get(key),
                    column="column 2 (code)",
                )
            )
    return problems
