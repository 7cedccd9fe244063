"""Checking code-set files: pure functions from file text to a `CodeSet` and a list of problems.

Used by the loader, the `iris-prompt codesets` command and CI, so all three say the same thing.
Every problem names the file, line and column, in words an ICB safeguarding lead can act on.

Rules (see codesets/README.md for the reasons):
- manifest: every field present and of the right kind; status draft/active/retired (retired
  cannot be loaded, draft is a warning); dates real, last review not in the future, next review
  after it (overdue is a warning); each category with a title, a lookback and the reason for it,
  and optionally `min_entries`, a whole number of at least 1 (default 1).
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
categories) is not a rule of the files: `recording_check.check_recording_set` checks it, and the
service and `iris-prompt codesets validate` apply it on top of these rules. So `diff` can still
compare with an older version written for an older template.
"""

import csv
import datetime
import io
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from iris_prompt.codesets.codes import SNOMED_CT, SYSTEM_NAMES, check_code, snomed_namespace
from iris_prompt.codesets.model import (
    PURPOSES,
    STATUSES,
    CategorySettings,
    CodeSet,
    Member,
    Problem,
)

__all__ = [
    "COLUMNS",
    "Checked",
    "check_across_sets",
    "check_codeset",
    "parse_lookback",
]

COLUMNS = ("system", "code", "term", "category", "source", "note")
_REQUIRED_COLUMNS = COLUMNS
_SYSTEMS_BY_NAME = {name: uri for uri, name in SYSTEM_NAMES.items()}
_MANIFEST_TEXT_FIELDS = ("id", "title", "version", "status", "owner", "purpose", "description")
_MANIFEST_DATE_FIELDS = ("last_reviewed", "next_review_due")
_CATEGORY_FIELDS = ("title", "lookback", "reason")
_OPTIONAL_CATEGORY_FIELDS = ("min_entries",)
# An id becomes part of the ValueSet's canonical URL and FHIR id: lower case, digits, hyphens.
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")
_LOOKBACK = re.compile(r"([1-9][0-9]*) (day|week|month|year)s?")
# A year counts as 365.25 days and a month as a twelfth of that, so "12 months" == "1 year".
_UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}
EMIS_NAMESPACE = "1000006"


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


def parse_lookback(text: str) -> datetime.timedelta | None:
    """ "2 years" -> timedelta; "whole record" -> None. Raises ValueError otherwise."""
    text = " ".join(text.split()).lower()
    if text == "whole record":
        return None
    match = _LOOKBACK.fullmatch(text)
    if not match:
        raise ValueError(
            f"lookback {text!r} is not understood: write a number and a unit, such as "
            "'18 months' or '2 years', or 'whole record'"
        )
    return datetime.timedelta(days=int(match[1]) * _UNIT_DAYS[match[2]])


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
    manifest = _check_manifest(manifest_text, manifest_file, today, checked.problems)
    categories = manifest.get("categories", {})
    members = _check_members(members_text, members_file, categories, checked)
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


# --- manifest --------------------------------------------------------------------------------
def _line_of(text: str, key: str, table: str | None = None) -> int | None:
    """The line where `key = ...` is written (inside `[table]` if given): for error messages."""
    in_table = table is None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = table is not None and stripped.strip("[] ") == table
            if in_table and key == "":
                return number
            continue
        if in_table and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


def _check_manifest(
    text: str, file: str, today: datetime.date, problems: list[Problem]
) -> dict[str, Any]:
    """The manifest's fields that are valid (all of them when no problem is an error)."""

    def problem(message: str, key: str | None = None, table: str | None = None, **kw: Any) -> None:
        line = _line_of(text, key or "", table) if key is not None or table else None
        column = f"field {key!r}" if key else None
        problems.append(Problem(file, message, line=line, column=column, **kw))

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        problems.append(
            Problem(
                file,
                f"not valid TOML ({error}); check quotes and '=' signs",
                line=int(match[1]) if match else None,
            )
        )
        return {}
    manifest: dict[str, Any] = {}
    for key in sorted(set(data) - {*_MANIFEST_TEXT_FIELDS, *_MANIFEST_DATE_FIELDS, "categories"}):
        problem(f"unknown field {key!r} (a typing mistake?)", key)
    for key in _MANIFEST_TEXT_FIELDS:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            problem(f'{key!r} is missing or empty: write it as {key} = "..."', key)
        else:
            manifest[key] = value.strip()
    for key in _MANIFEST_DATE_FIELDS:
        value = data.get(key)
        if isinstance(value, str):
            try:
                value = datetime.date.fromisoformat(value.strip())
            except ValueError:
                pass
        if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
            problem(f"{key!r} must be a date written as {key} = 2026-01-31", key)
        else:
            manifest[key] = value
    if "id" in manifest and not _ID.fullmatch(manifest["id"]):
        problem("'id' may use only lower-case letters, digits and hyphens", "id")
    if "version" in manifest and not _VERSION.fullmatch(manifest["version"]):
        problem("'version' must be numbers with dots, such as 1.2.0", "version")
    if manifest.get("status") not in (None, *STATUSES):
        problem(f"'status' must be one of {', '.join(STATUSES)}", "status")
    elif manifest.get("status") == "retired":
        problem("status is 'retired': a retired set cannot be loaded by the service", "status")
    elif manifest.get("status") == "draft":
        problem("status is 'draft': set it to 'active' once approved", "status", severity="warning")
    if manifest.get("purpose") not in (None, *PURPOSES):
        problem(f"'purpose' must be one of {', '.join(PURPOSES)}", "purpose")
    reviewed, due = manifest.get("last_reviewed"), manifest.get("next_review_due")
    if reviewed is not None and reviewed > today:
        problem(f"'last_reviewed' {reviewed} is in the future", "last_reviewed")
    if reviewed is not None and due is not None:
        if due <= reviewed:
            problem("'next_review_due' must be after 'last_reviewed'", "next_review_due")
        elif due < today:
            problem(f"review was due on {due}", "next_review_due", severity="warning")
    manifest["categories"] = _check_categories(data.get("categories"), problem)
    return manifest


def _check_categories(raw: Any, problem: Any) -> dict[str, CategorySettings]:
    if not isinstance(raw, dict) or not raw:
        problem("no categories: add a [categories.NAME] table for each category", "categories")
        return {}
    categories: dict[str, CategorySettings] = {}
    for name, settings in raw.items():
        table = f"categories.{name}"
        if not _ID.fullmatch(name):
            problem(f"category {name!r}: use lower-case letters, digits, hyphens", table=table)
            continue
        if not isinstance(settings, dict):
            problem(f"category {name!r} must be a table [categories.{name}]", table=table)
            continue
        for key in sorted(set(settings) - {*_CATEGORY_FIELDS, *_OPTIONAL_CATEGORY_FIELDS}):
            problem(f"unknown field {key!r} in category {name!r}", key, table)
        texts = {}
        for key in _CATEGORY_FIELDS:
            value = settings.get(key)
            if not isinstance(value, str) or not value.strip():
                problem(f'category {name!r} needs {key} = "..."', key, table)
            else:
                texts[key] = " ".join(value.split()) if key == "lookback" else value.strip()
        min_entries = settings.get("min_entries", 1)
        if type(min_entries) is not int or min_entries < 1:
            problem(
                f"category {name!r}: min_entries must be a whole number of at least 1, such as "
                "min_entries = 3 (how many entries on different days inside the lookback it "
                "takes to count)",
                "min_entries",
                table,
            )
            continue
        if len(texts) != len(_CATEGORY_FIELDS):
            continue
        try:
            lookback = parse_lookback(texts["lookback"])
        except ValueError as error:
            problem(f"category {name!r}: {error}", "lookback", table)
            continue
        categories[name] = CategorySettings(
            lookback=lookback,
            title=texts["title"],
            reason=texts["reason"],
            lookback_text=texts["lookback"],
            min_entries=min_entries,
        )
    return categories


# --- members ---------------------------------------------------------------------------------
def _check_members(
    text: str, file: str, categories: dict[str, CategorySettings], checked: Checked
) -> list[Member]:
    problems = checked.problems
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lower() for cell in next(reader, [])]
    missing = [c for c in _REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c and c not in COLUMNS]
    if missing or unknown or not header:
        problems.append(
            Problem(
                file,
                f"the first line must name the columns {', '.join(COLUMNS)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else ""),
                line=1,
            )
        )
        return []
    members: list[Member] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append(
                Problem(file, f"{len(row)} values but {len(header)} columns (a stray comma?)", line)
            )
            continue
        cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
        member = _check_row(cells, header, file, line, categories, problems)
        if member is None:
            continue
        key = (member.system, member.code)
        if key in checked.member_lines:
            earlier = checked.member_lines[key]
            other = next(m for m in members if (m.system, m.code) == key)
            more = (
                f" in category {other.category!r}; a code belongs to one category"
                if other.category != member.category
                else ""
            )
            problems.append(
                Problem(
                    file,
                    f"{SYSTEM_NAMES[member.system]} {member.code} is already on line {earlier}"
                    f"{more}; delete one of the two lines",
                    line,
                    _column(header, "code"),
                )
            )
            continue
        checked.member_lines[key] = line
        members.append(member)
    return members


def _column(header: list[str], name: str) -> str:
    return f"column {header.index(name) + 1} ({name})"


def _check_row(
    cells: dict[str, str],
    header: list[str],
    file: str,
    line: int,
    categories: dict[str, CategorySettings],
    problems: list[Problem],
) -> Member | None:
    before = len(problems)

    def problem(column: str, message: str) -> None:
        problems.append(Problem(file, message, line, _column(header, column)))

    system = _SYSTEMS_BY_NAME.get(cells.get("system", ""))
    code = cells.get("code", "")
    if system is None:
        names = ", ".join(repr(n) for n in _SYSTEMS_BY_NAME)
        problem("system", f"system {cells.get('system', '')!r} is not one of {names}")
    elif not code:
        problem("code", "the code is missing")
    else:
        try:
            check_code(system, code)
        except ValueError as error:
            problem("code", str(error))
        else:
            if system == SNOMED_CT and snomed_namespace(code) == EMIS_NAMESPACE:
                problem(
                    "code",
                    f"{code} is an EMIS local code (namespace {EMIS_NAMESPACE}), not national "
                    "SNOMED CT: other GP systems will never record it",
                )
    for column, what in (("term", "term"), ("category", "category"), ("source", "source")):
        if not cells.get(column):
            problem(column, f"the {what} is missing")
    category = cells.get("category", "")
    if category and categories and category not in categories:
        known = ", ".join(categories)
        problem("category", f"category {category!r} is not in the manifest (known: {known})")
    if len(problems) > before or system is None:
        return None
    return Member(system, code, cells["term"], category, cells["source"], cells.get("note", ""))
