"""The one mapping from answers to codes, its sources, and the card's one-click suggestions."""

import csv
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from iris_prompt.recording import (
    MAPPING,
    OUTCOMES_ONE_CLICK,
    UNCODED,
    extract,
    outcome_resources,
    resources_for,
)
from iris_prompt.template import iter_items, questionnaire

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
}

# The recording code set's categories (the code-set branch owns the set; the lead cross-checks).
CATEGORIES = {
    "enquiry-made": {"700410005"},
    "enquiry-declined": {"700411009"},
    "enquiry-not-made": {"887331000000105", "699231000"},
    "victim": {"879911000000102"},
    "history": {"429746005"},
    "abuse-physical": {"720684005"},
    "abuse-sexual": {"720595008"},
    "abuse-emotional": {"720025009", "1045671000000102"},
    "abuse-financial": {"225827005"},
    "risk-checklist": {"886191000000106", "886201000000108"},
    "risk-classification": {"886231000000102"},
    "referral-advocate": {"431719007"},
    "referral-agency": {"758599003", "784861000000102"},
    "referral-marac": {"978091000000105"},
    "online-access-review": {"1364731000000104"},
}


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


def test_every_code_is_in_the_recording_set_category_named_beside_it() -> None:
    entries = {entry for mapped in MAPPING.values() for entry in mapped}
    for entry in entries:
        assert entry.code in CATEGORIES[entry.category], entry


def test_every_code_and_term_is_as_in_the_sourced_reference_list(reference_dir: Path) -> None:
    path = reference_dir / "codes" / "domestic-abuse-and-mappa-codes.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        sourced = {
            (row["snomed_concept_id"], row["term_as_in_source"]) for row in csv.DictReader(handle)
        }
    # Every entry the template can produce: the mapping, and the DASH and MARAC rule entries.
    response = {
        "outcome": ["disclosed"],
        "dash.q01": ["yes"],
        "dash.judgement": [True],
    }
    produced = resources_for(response, subject={}, when="2026")
    codings = [r["code"]["coding"][0] for r in produced]
    codings += [{"code": e.code, "display": e.display} for v in MAPPING.values() for e in v]
    assert {"886191000000106", "886231000000102", "978091000000105"} <= {c["code"] for c in codings}
    for coding in codings:
        assert (coding["code"], coding["display"]) in sourced, coding


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
    assert suggested == extracted
    assert len(suggested) == 1


def test_one_click_is_not_offered_for_a_disclosure(when: datetime) -> None:
    with pytest.raises(ValueError, match="outcome"):
        outcome_resources("disclosed", subject=None, when=when)


def test_one_click_needs_a_time_with_a_zone(when: datetime) -> None:
    with pytest.raises(ValueError, match="timezone"):
        outcome_resources("declined", subject=None, when=when.replace(tzinfo=None))
