"""The validator: a table of bad rows (each with its reason), manifest rules, rules across sets."""

import datetime
import re
from pathlib import Path

import pytest

from iris_prompt.codesets.codes import READ_V2, SNOMED_CT
from iris_prompt.codesets.manifest import parse_lookback
from iris_prompt.codesets.model import Problem
from iris_prompt.codesets.validation import check_codeset

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "codesets"
TODAY = datetime.date(2026, 6, 1)
MANIFEST = (FIXTURES / "trigger-manifest.toml").read_text(encoding="utf-8")
HEADER = "system,code,term,category,source,note\n"


def check(manifest: str = MANIFEST, members: str = HEADER, today: datetime.date = TODAY):
    return check_codeset(
        manifest,
        members,
        manifest_file="trigger.toml",
        members_file="trigger.csv",
        today=today,
    )


def bad_row_table() -> list[tuple[int, str, str]]:
    text = (FIXTURES / "bad-rows.csv").read_text(encoding="utf-8")
    table = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.search(r"EXPECT (.*?) -- (.*)$", line)
        if match:
            table.append((number, match[1], match[2]))
    return table


BAD_ROWS = bad_row_table()


def test_the_table_has_rows() -> None:
    assert len(BAD_ROWS) >= 15


@pytest.mark.parametrize(("line", "expected", "reason"), BAD_ROWS)
def test_each_bad_row_fails_for_its_reason(line: int, expected: str, reason: str) -> None:
    checked = check(members=(FIXTURES / "bad-rows.csv").read_text(encoding="utf-8"))
    on_line = [p for p in checked.problems if p.line == line]
    assert len(on_line) == 1, (reason, on_line)
    assert expected in on_line[0].message, (reason, on_line[0].message)
    assert on_line[0].file == "trigger.csv"


def test_good_rows_raise_nothing_and_problems_name_the_column() -> None:
    checked = check(members=(FIXTURES / "bad-rows.csv").read_text(encoding="utf-8"))
    assert {p.line for p in checked.problems} == {line for line, _, _ in BAD_ROWS}
    assert checked.codeset is None
    check_digit = next(p for p in checked.problems if p.line == 4)
    assert str(check_digit).startswith("trigger.csv, line 4, column 2 (code): '35489008' fails")


def test_a_valid_set_is_built_indexed_and_sorted() -> None:
    members = HEADER + (
        "Read v2,E112.,Single major depressive episode,anxiety,src,\n"
        "SNOMED CT, 35489007 ,Depressive disorder,depression,src,a note\n"
        "\n"
    )
    checked = check(members=members)
    assert checked.problems == []
    codeset = checked.codeset
    assert codeset is not None
    assert [m.code for m in codeset.members] == ["35489007", "E112."]  # manifest category order
    assert codeset.lookup(SNOMED_CT, "35489007").note == "a note"  # whitespace stripped
    assert codeset.lookup(READ_V2, "E112.00").term == "Single major depressive episode"
    assert codeset.lookup(READ_V2, "E112.") is codeset.lookup(READ_V2, "E112.00")
    assert codeset.lookup(SNOMED_CT, "E112.") is None
    assert codeset.categories["depression"].lookback == datetime.timedelta(days=730.5)
    assert codeset.categories["anxiety"].lookback is None
    assert codeset.categories["depression"].min_entries == 1  # one entry counts, by default


def test_a_category_can_ask_for_several_entries() -> None:
    """Recurrent urinary tract infections: at least 3 entries within the lookback."""
    manifest = MANIFEST.replace('lookback = "2 years"', 'lookback = "2 years"\nmin_entries = 3', 1)
    checked = check(manifest=manifest)
    assert checked.problems == []
    assert checked.codeset is not None
    assert checked.codeset.categories["depression"].min_entries == 3


@pytest.mark.parametrize("purpose", ["known-abuse", "recording"])
def test_several_entries_where_the_service_counts_one_is_a_warning(purpose: str) -> None:
    """The service applies min_entries to trigger categories only: in another set it does
    nothing, so a lead asking for two police reports would get one. Said, but not refused: a
    local set that has it and loaded before must not stop the service starting."""
    manifest = MANIFEST.replace('lookback = "2 years"', 'lookback = "2 years"\nmin_entries = 2', 1)
    manifest = manifest.replace('purpose = "trigger"', f'purpose = "{purpose}"')
    checked = check(manifest=manifest)
    assert checked.errors == [] and checked.codeset is not None
    # (A known-abuse set also warns that it does not know the category 'depression'.)
    (problem,) = [p for p in checked.problems if p.column == "field 'min_entries'"]
    assert problem.severity == "warning" and str(problem) == (
        "trigger.toml, line 15, field 'min_entries': warning: category 'depression': "
        "min_entries counts only in the trigger set; the service takes one entry of a "
        f"{purpose} category as enough, so it does nothing here: remove it"
    )
    manifest = manifest.replace("min_entries = 2", "min_entries = 1")
    assert [p for p in check(manifest=manifest).problems if "min_entries" in str(p)] == []


def test_a_known_abuse_category_the_service_does_not_know_is_a_warning() -> None:
    """Renaming 'victim' to 'victims' would move its codes from the review-safety card to a
    first enquiry: the service treats every category it does not know as abuse in the
    household. Accepted (a lead may add such a category), but never silently."""
    manifest = MANIFEST.replace('purpose = "trigger"', 'purpose = "known-abuse"')
    manifest = manifest.replace("[categories.depression]", "[categories.victims]")
    manifest = manifest.replace("[categories.anxiety]", "[categories.victim]")
    checked = check(manifest=manifest)
    (problem,) = checked.problems
    assert problem.severity == "warning" and checked.codeset is not None
    assert str(problem) == (
        "trigger.toml, line 12: warning: category 'victims' is not one of those meaning abuse "
        "is known for this patient (victim, history, at-risk, marac, police-report): the "
        "service treats its codes as abuse in the household, a reason for a first enquiry, "
        "never the review-safety card; rename it if its codes say this patient is harmed"
    )


def test_header_must_name_the_columns() -> None:
    checked = check(members="code,term\n35489007,Depressive disorder\n")
    assert [p.line for p in checked.problems] == [1]
    assert "missing system, category, source, note" in checked.problems[0].message


@pytest.mark.parametrize(
    ("text", "days"),
    [("2 years", 730.5), ("18 months", 547.875), ("1 year", 365.25), ("6 weeks", 42), ("1 day", 1)],
)
def test_lookback_words(text: str, days: float) -> None:
    assert parse_lookback(text) == datetime.timedelta(days=days)


@pytest.mark.parametrize("text", ["two years", "2 yrs", "0 days", "-1 year", "forever", ""])
def test_lookback_words_not_understood(text: str) -> None:
    with pytest.raises(ValueError, match="not understood"):
        parse_lookback(text)


MANIFEST_CASES = [
    ('status = "active"', 'status = "live"', "must be one of draft, active, retired", "status"),
    ('status = "active"', 'status = "retired"', "cannot be loaded", "retired set goes live"),
    ('purpose = "trigger"', 'purpose = "triggers"', "'purpose' must be one of", "typo"),
    ('title = "Test triggers"', 'title = ""', "'title' is missing or empty", "empty field"),
    ('owner = "Test ICB safeguarding lead"\n', "", "'owner' is missing", "missing field"),
    ("last_reviewed = 2026-01-15", "last_reviewed = 2026-02-30", "not valid TOML", "bad date"),
    ("last_reviewed = 2026-01-15", 'last_reviewed = "15/01/2026"', "must be a date", "UK date"),
    ("last_reviewed = 2026-01-15", "last_reviewed = 2026-07-01", "in the future", "future"),
    ("next_review_due = 2027-01-15", "next_review_due = 2025-01-15", "after", "before last"),
    ('version = "0.1.0"', 'version = "v1"', "numbers with dots", "version format"),
    ('id = "test-trigger"', 'id = "Test Trigger"', "lower-case letters", "id format"),
    ('lookback = "2 years"', 'lookback = "two years"', "not understood", "lookback words"),
    ('reason = "Recent depression only."', "", "needs reason", "every lookback has a reason"),
    ('lookback = "2 years"', 'lookbak = "2 years"', "unknown field 'lookbak'", "typo in category"),
    ('lookback = "2 years"', 'lookback = "2 years"\nmin_entries = 0', "at least 1", "no count"),
    ('lookback = "2 years"', 'lookback = "2 years"\nmin_entries = "3"', "whole number", "text"),
    ('lookback = "2 years"', 'lookback = "2 years"\nmin_entries = 2.5', "whole number", "float"),
    (
        'purpose = "trigger"',
        'purpose = "trigger"\ncolour = "red"',
        "unknown field 'colour'",
        "typo",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected", "reason"), MANIFEST_CASES)
def test_manifest_rules(old: str, new: str, expected: str, reason: str) -> None:
    assert old in MANIFEST
    checked = check(manifest=MANIFEST.replace(old, new, 1))
    errors = [p for p in checked.problems if p.severity == "error"]
    assert any(expected in p.message for p in errors), (reason, checked.problems)
    assert checked.codeset is None
    assert all(p.file == "trigger.toml" for p in errors)


def test_manifest_problems_give_the_line_of_the_field() -> None:
    checked = check(manifest=MANIFEST.replace('status = "active"', 'status = "live"'))
    (problem,) = checked.problems
    assert problem.line == MANIFEST.splitlines().index('status = "active"') + 1
    assert problem.column == "field 'status'"


def test_draft_and_overdue_review_are_warnings_not_errors() -> None:
    manifest = MANIFEST.replace('status = "active"', 'status = "draft"')
    checked = check(manifest=manifest, today=datetime.date(2027, 3, 1))
    assert {p.severity for p in checked.problems} == {"warning"}
    assert {p.column for p in checked.problems} == {"field 'status'", "field 'next_review_due'"}
    assert checked.codeset is not None


def test_problem_text_for_people() -> None:
    problem = Problem("codesets/trigger.csv", "the term is missing", 12, "column 3 (term)")
    assert str(problem) == "codesets/trigger.csv, line 12, column 3 (term): the term is missing"
    warning = Problem("a.toml", "review was due", severity="warning")
    assert str(warning) == "a.toml: warning: review was due"
