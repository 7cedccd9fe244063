"""The one mapping from answers to codes, its sources, and the card's one-click suggestions."""

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from iris_prompt.codesets.files import check_folder, default_codesets_dir, load_codesets
from iris_prompt.template.codeset_check import check_recording_set
from iris_prompt.template.extract import extract
from iris_prompt.template.questionnaire import iter_items, questionnaire
from iris_prompt.template.recording import (
    MAPPING,
    OUTCOMES_ONE_CLICK,
    UNCODED,
    outcome_resources,
    resources_for,
)

Build = Callable[..., dict[str, Any]]

# Every coded answer, written out independently of MAPPING: (linkId, answer) -> (code, resource).
EXPECTED = {
    ("outcome", "disclosed"): [
        ("700410005", "Observation"),  # Routine enquiry about domestic abuse
        ("1364731000000104", "Observation"),  # Enhanced review indicated before online access
    ],
    ("outcome", "not-disclosed"): [("700410005", "Observation")],
    ("outcome", "declined"): [("700411009", "Observation")],
    ("outcome", "not-safe-to-ask"): [("887331000000105", "Observation")],
    ("disclosure.when", "current"): [("879911000000102", "Observation")],
    ("disclosure.when", "past"): [("429746005", "Observation")],
    ("disclosure.types", "physical"): [("720684005", "Observation")],
    ("disclosure.types", "sexual"): [("720595008", "Observation")],
    ("disclosure.types", "emotional"): [("720025009", "Observation")],
    ("disclosure.types", "economic"): [("225827005", "Observation")],
    ("actions.taken", "referral-advocate"): [("431719007", "ServiceRequest")],
    ("actions.taken", "referral-agency"): [("758599003", "ServiceRequest")],
    ("actions.taken", "referral-marac"): [("978091000000105", "ServiceRequest")],
    ("actions.taken", "child-safeguarding"): [("380491000000101", "ServiceRequest")],
    ("actions.taken", "information-given"): [("413457006", "Observation")],
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the bundled code sets to edit."""
    target = tmp_path / "codesets"
    shutil.copytree(default_codesets_dir(), target)
    return target


def coded(resources: list[dict]) -> list[tuple[str, str]]:
    return [(r["code"]["coding"][0]["code"], r["resourceType"]) for r in resources]


@pytest.mark.parametrize(("answer", "expected"), sorted(EXPECTED.items()))
def test_each_answer_records_its_codes(answer: tuple[str, str], expected: list) -> None:
    link_id, value = answer
    resources = resources_for({link_id: [value]}, subject={"reference": "Patient/1"}, when="2026")
    assert coded(resources) == expected


@pytest.mark.parametrize("answer", sorted(UNCODED))
def test_answers_without_a_national_code_record_no_entry(answer: tuple[str, str]) -> None:
    link_id, value = answer
    assert resources_for({link_id: [value]}, subject={}, when="2026") == []


def test_the_table_above_is_the_whole_mapping() -> None:
    assert {k: [(e.code, e.kind) for e in v] for k, v in MAPPING.items()} == EXPECTED


def test_every_option_of_a_coded_question_is_either_mapped_or_knowingly_uncoded() -> None:
    items = {item["linkId"]: item for item in iter_items(questionnaire()["item"])}
    questions = {link_id for link_id, _ in MAPPING}
    options = {
        (link_id, o["valueCoding"]["code"])
        for link_id in questions
        for o in items[link_id]["answerOption"]
    }
    assert set(MAPPING) | UNCODED == options
    assert not set(MAPPING) & UNCODED


def test_the_bundled_recording_set_agrees_with_the_template(folder: Path) -> None:
    assert check_recording_set(load_codesets(folder)) == []
    assert check_folder(folder, checks=[check_recording_set]).problems == []


def test_every_entry_the_template_can_write_is_checked_against_the_set(folder: Path) -> None:
    """The mapping and the DASH and MARAC entries: removing any one of them is caught."""
    response = {"outcome": ["disclosed"], "dash.q01": ["yes"], "dash.judgement": [True]}
    produced = resources_for(response, subject={}, when="2026")
    codes = {r["code"]["coding"][0]["code"] for r in produced}
    codes |= {entry.code for entries in MAPPING.values() for entry in entries}
    assert {"886191000000106", "886231000000102", "978091000000105"} <= codes
    for code in sorted(codes):
        copy = folder.parent / f"without-{code}"
        shutil.copytree(folder, copy)
        drop_row(copy / "recording.csv", code)
        problems = check_folder(copy, checks=[check_recording_set]).errors
        assert [p.message for p in problems if code in p.message], code


def drop_row(path: Path, code: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if f",{code}," not in line]
    assert len(kept) == len(lines) - 1
    path.write_text("".join(kept), encoding="utf-8")


def edit(path: Path, old: str, new: str) -> int:
    """Replace the one line holding `old`; return its line number."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    (number,) = [n for n, line in enumerate(lines, start=1) if old in line]
    lines[number - 1] = lines[number - 1].replace(old, new)
    path.write_text("".join(lines), encoding="utf-8")
    return number


def test_a_deleted_template_code_makes_the_folder_unusable(folder: Path) -> None:
    drop_row(folder / "recording.csv", "887331000000105")
    report = check_folder(folder, checks=[check_recording_set])
    assert report.codesets is None
    (problem,) = report.errors
    assert str(problem) == (
        f"{folder / 'recording.csv'}: the recording template writes SNOMED CT 887331000000105 "
        "'Routine enquiry about domestic abuse not made' (category 'enquiry-not-made') for answer "
        "'Not safe to ask: enquiry not made' to 'Outcome of the enquiry', but the code is not in "
        "this set: put its row back; or, if the change is meant, a developer must change the "
        "template first"
    )


def test_a_template_code_moved_to_another_category_is_refused(folder: Path) -> None:
    line = edit(
        folder / "recording.csv",
        "SNOMED CT,700411009,Routine enquiry about domestic abuse declined,enquiry-declined,",
        "SNOMED CT,700411009,Routine enquiry about domestic abuse declined,enquiry-made,",
    )
    (problem,) = check_folder(folder, checks=[check_recording_set]).errors
    assert (problem.line, problem.column) == (line, "column 4 (category)")
    assert "this row's category is 'enquiry-made': write 'enquiry-declined'" in problem.message


def test_a_template_code_with_another_term_is_refused(folder: Path) -> None:
    line = edit(
        folder / "recording.csv",
        "SNOMED CT,431719007,Referral to domestic violence advocate,",
        "SNOMED CT,431719007,Referral to IDVA,",
    )
    (problem,) = check_folder(folder, checks=[check_recording_set]).errors
    assert (problem.file, problem.line, problem.column) == (
        str(folder / "recording.csv"),
        line,
        "column 3 (term)",
    )
    assert "term is 'Referral to IDVA': write 'Referral to domestic violence advocate'" in str(
        problem
    )


def test_the_file_rules_alone_do_not_know_the_template(folder: Path) -> None:
    """So `diff` and `stats` still read a version written for an older template."""
    drop_row(folder / "recording.csv", "887331000000105")
    assert check_folder(folder).errors == []


def test_every_category_the_service_looks_up_must_hold_a_code(folder: Path) -> None:
    drop_row(folder / "recording.csv", "495021000000105")
    drop_row(folder / "recording.csv", "13Hl.")
    (problem,) = check_folder(folder, checks=[check_recording_set]).errors
    assert problem.message == (
        "the recording set has no code in category 'mappa': the service needs one"
    )


@pytest.mark.parametrize("outcome", OUTCOMES_ONE_CLICK)
@pytest.mark.parametrize("subject", ["Patient/abc-123", None])
def test_one_click_suggestions_equal_what_extract_records(
    build: Build, when: datetime, outcome: str, subject: str | None
) -> None:
    safe = outcome != "not-safe-to-ask"
    form = {
        "safety.alone": ["true" if safe else "false"],
        **({"safety.safe-to-ask": ["true"]} if safe else {}),
        "outcome": [outcome],
    }
    bundle = extract(build(form, subject=subject), when=when)
    extracted = [entry["resource"] for entry in bundle["entry"][1:]]
    suggested = outcome_resources(outcome, subject=subject, when=when)
    assert orjson.dumps(suggested) == orjson.dumps(extracted)  # key order too
    assert len(suggested) == 1


def test_each_card_gets_its_own_one_click_entries(when: datetime) -> None:
    # The entries come from a pattern made once: what one card's entries become (the subject
    # of one patient) must never show in the next card's.
    first = outcome_resources("declined", subject="Patient/one", when=when)
    first[0]["meta"]["security"].clear()
    first[0]["code"]["text"] = "changed"
    second = outcome_resources("declined", subject="Patient/two", when=when)
    assert second[0]["subject"] == {"reference": "Patient/two"}
    assert len(second[0]["meta"]["security"]) == 2
    assert second[0]["code"]["text"] == "Routine enquiry about domestic abuse declined"


def test_one_click_is_not_offered_for_a_disclosure(when: datetime) -> None:
    with pytest.raises(ValueError, match="outcome"):
        outcome_resources("disclosed", subject=None, when=when)


def test_one_click_needs_a_time_with_a_zone(when: datetime) -> None:
    with pytest.raises(ValueError, match="timezone"):
        outcome_resources("declined", subject=None, when=when.replace(tzinfo=None))
