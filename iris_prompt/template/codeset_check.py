"""Does the recording code set hold what the recording template writes?

The template's entries (`recording.MAPPING`, and the DASH and MARAC entries) are plain data in
`recording.py`; the recording code set is what ICB leads maintain. `check_recording_set` finds
every entry the template writes that is missing from the set, or is there with another term or
category, and every category the service looks codes up by that has no code. The service
applies it at start-up and on each reload (`codeset_runtime.SERVICE_CHECKS`: a reload that fails
it is refused and the live sets stay), and `iris-prompt codesets validate` and `import` apply it
too. Each problem says, in a lead's words, what to write and where.
"""

from collections.abc import Sequence

from iris_prompt.codesets.codes import SNOMED_CT
from iris_prompt.codesets.members import COLUMNS
from iris_prompt.codesets.model import RECORDING_CATEGORIES, CodeSets, Problem
from iris_prompt.codesets.validation import Checked
from iris_prompt.template.questionnaire import iter_items, questionnaire
from iris_prompt.template.recording import (
    DASH_CHECKLIST,
    DASH_CLASSIFICATION,
    MAPPING,
    REFERRAL_MARAC,
    Entry,
)

__all__ = ["check_recording_set"]


def _written() -> dict[Entry, list[str]]:
    """Every entry the template can write, with when it writes it (in words, for a lead)."""
    labels = {
        (item["linkId"], option["valueCoding"]["code"]): (
            f"answer '{option['valueCoding']['display']}' to '{item['text']}'"
        )
        for item in iter_items(questionnaire()["item"])
        for option in item.get("answerOption", ())
    }
    written: dict[Entry, list[str]] = {}
    for answer, entries in MAPPING.items():
        for entry in entries:
            written.setdefault(entry, []).append(labels[answer])
    for entry, when in (
        (DASH_CHECKLIST, "any DASH topic answered"),
        (DASH_CLASSIFICATION, "any DASH topic answered"),
        (REFERRAL_MARAC, "the MARAC criteria met"),
    ):
        written.setdefault(entry, []).append(when)
    return written


def check_recording_set(codesets: CodeSets, checked: Sequence[Checked] = ()) -> list[Problem]:
    """What is wrong between the template and the recording code set (empty when they agree).

    Every entry the template writes must be in the set with the same term and category, and
    every category the service looks codes up by (`RECORDING_CATEGORIES`) must hold a code.
    `checked` (from `check_folder`) only serves to name the file and line of each problem.

        >>> from iris_prompt.codesets.files import default_codesets_dir, load_codesets
        >>> check_recording_set(load_codesets(default_codesets_dir()))
        []
    """
    recording = codesets.recording
    files = next((c for c in checked if c.purpose == "recording"), None)
    members_file = files.members_file if files else f"recording set {recording.id}"
    manifest_file = files.manifest_file if files else f"recording set {recording.id}"
    lines = files.member_lines if files else {}
    after = "; or, if the change is meant, a developer must change the template first"
    problems = []
    for entry, when in _written().items():
        what = (
            f"the recording template writes SNOMED CT {entry.code} {entry.display!r} "
            f"(category {entry.category!r}) for {' and '.join(when)}"
        )
        member = recording.lookup(SNOMED_CT, entry.code)
        if member is None:
            message = f"{what}, but the code is not in this set: put its row back{after}"
            problems.append(Problem(members_file, message))
            continue
        line = lines.get((SNOMED_CT, entry.code))
        for column, found, wanted in (
            ("term", member.term, entry.display),
            ("category", member.category, entry.category),
        ):
            if found != wanted:
                message = f"{what}, but this row's {column} is {found!r}: write {wanted!r}{after}"
                where = f"column {COLUMNS.index(column) + 1} ({column})"
                problems.append(Problem(members_file, message, line, where))
    for name in RECORDING_CATEGORIES:
        if name not in recording.categories:
            message = f"the recording set needs category {name!r}: the service looks codes up by it"
            problems.append(Problem(manifest_file, message))
        elif not recording.in_category(name):
            message = f"the recording set has no code in category {name!r}: the service needs one"
            problems.append(Problem(members_file, message))
    return problems
