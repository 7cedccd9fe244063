"""Checking a code set's manifest (TOML): pure, from file text to its valid fields and the
problems, each naming the file, line and field (see `validation.py` for the rules).

>>> parse_lookback("18 months").days, parse_lookback("whole record")
(547, None)
"""

import datetime
import re
import tomllib
from typing import Any

from iris_prompt.codesets.model import (
    KNOWN_ABUSE_FOR_PATIENT,
    PURPOSES,
    STATUSES,
    CategorySettings,
    Problem,
)

__all__ = ["check_manifest", "parse_lookback"]

_MANIFEST_TEXT_FIELDS = ("id", "title", "version", "status", "owner", "purpose", "description")
_MANIFEST_DATE_FIELDS = ("last_reviewed", "next_review_due")
_CATEGORY_FIELDS = ("title", "lookback", "reason")
_OPTIONAL_CATEGORY_FIELDS = ("min_entries",)
# The known-abuse category for codes saying there is abuse in the household, not who is harmed
# (codesets/README.md): the service treats it, and any category it does not know, as a reason
# to ask. Any other name is probably a typing mistake for one of KNOWN_ABUSE_FOR_PATIENT.
ABUSE_IN_HOUSEHOLD = "abuse-in-household"
# An id becomes part of the ValueSet's canonical URL and FHIR id: lower case, digits, hyphens.
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")
_LOOKBACK = re.compile(r"([1-9][0-9]*) (day|week|month|year)s?")
# A year counts as 365.25 days and a month as a twelfth of that, so "12 months" == "1 year".
_UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}


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


def check_manifest(
    text: str, file: str, today: datetime.date, problems: list[Problem]
) -> dict[str, Any]:
    """The manifest's fields that are valid (all of them when no problem is an error); every
    problem goes to `problems`."""

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
    purpose = manifest.get("purpose")
    if purpose in PURPOSES and purpose != "trigger":
        # The engine counts entries per day only for triggers (rules.py, rule 3): elsewhere the
        # setting is read and does nothing. A warning, not an error: a folder that loaded before
        # this check must not stop the service starting (every prompt lost) for a no-op.
        for name, settings in manifest["categories"].items():
            if settings.min_entries != 1:
                problem(
                    f"category {name!r}: min_entries counts only in the trigger set; the service "
                    f"takes one entry of a {purpose} category as enough, so it does nothing "
                    "here: remove it",
                    "min_entries",
                    f"categories.{name}",
                    severity="warning",
                )
    if purpose == "known-abuse":
        for name in manifest["categories"]:
            if name not in (*KNOWN_ABUSE_FOR_PATIENT, ABUSE_IN_HOUSEHOLD):
                problem(
                    f"category {name!r} is not one of those meaning abuse is known for this "
                    f"patient ({', '.join(KNOWN_ABUSE_FOR_PATIENT)}): the service treats its "
                    "codes as abuse in the household, a reason for a first enquiry, never the "
                    "review-safety card; rename it if its codes say this patient is harmed",
                    table=f"categories.{name}",
                    severity="warning",
                )
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
