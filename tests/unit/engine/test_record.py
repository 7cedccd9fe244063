"""Reading the record: codes found by (system, code), statuses honoured, dates read."""

import datetime
from itertools import chain

import pytest

from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.record import read_record, resources_in
from tests.support.records import (
    ANXIETY_DISORDER,
    ANXIETY_STATE_READ,
    DEPRESSIVE_DISORDER,
    ENQUIRY_MADE,
    MAJOR_DEPRESSION_READ,
    SINGLE_MAJOR_DEPRESSIVE_EPISODE_CTV3,
    TERMINATION_OF_PREGNANCY,
    VICTIM_OF_DOMESTIC_ABUSE,
    bundle,
    condition,
    encounter,
    observation,
    patient,
    procedure,
)


def found(resources: list[dict], sets: CodeSets) -> list[tuple[str, str, str]]:
    return [(e.set, e.category, e.code) for e in read_record(resources, sets).entries]


def test_snomed_read_v2_and_read_v2_with_term_code_are_all_found(sets: CodeSets) -> None:
    resources = [
        condition(DEPRESSIVE_DISORDER, "2025-01-01", rid="a"),
        condition(ANXIETY_STATE_READ, "2025-01-01", rid="b"),
        # GP systems write the 2-character term code after the Read v2 concept.
        condition(("http://read.info/readv2", "E112.00"), "2025-01-01", rid="c"),
    ]
    assert found(resources, sets) == [
        ("trigger", "depression", "35489007"),
        ("trigger", "anxiety", "E2000"),
        ("trigger", "depression", MAJOR_DEPRESSION_READ[1]),
    ]


def test_terms_come_from_the_code_set_not_the_record(sets: CodeSets) -> None:
    resource = condition(DEPRESSIVE_DISORDER, "2025-01-01")
    resource["code"]["coding"][0]["display"] = "free text a card must not show"
    (entry,) = read_record([resource], sets).entries
    assert entry.term == "Depressive disorder"


@pytest.mark.parametrize(
    ("system", "code", "why"),
    [
        ("http://snomed.info/sct/", "35489007", "system URI must be exact"),
        ("http://read.info/ctv3", "35489007", "same code in another system is another concept"),
        ("http://snomed.info/sct", "35489007 ", "codes are matched exactly"),
        ("http://read.info/readv2", "E2000000", "a Read v2 code is 5 or 7 characters"),
        ("http://snomed.info/sct", None, "no code"),
    ],
)
def test_near_misses_do_not_match(sets: CodeSets, system: str, code: str, why: str) -> None:
    resource = {
        "resourceType": "Condition",
        "recordedDate": "2025-01-01",
        "code": {"coding": [{"system": system, "code": code}]},
    }
    assert found([resource], sets) == [], why


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_or_mistaken_conditions_are_skipped(sets: CodeSets, verification: str) -> None:
    assert (
        found([condition(DEPRESSIVE_DISORDER, "2025-01-01", verification=verification)], sets) == []
    )


@pytest.mark.parametrize("verification", ["confirmed", "unconfirmed", "provisional", None])
def test_other_verification_statuses_count(sets: CodeSets, verification: str | None) -> None:
    resource = condition(DEPRESSIVE_DISORDER, "2025-01-01", verification=verification)
    assert len(found([resource], sets)) == 1


def test_clinical_status_is_kept_on_the_entry(sets: CodeSets) -> None:
    (entry,) = read_record(
        [condition(DEPRESSIVE_DISORDER, "2025-01-01", clinical="resolved")], sets
    ).entries
    assert entry.clinical_status == "resolved"


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_mistaken_or_cancelled_observations_and_encounters_are_skipped(
    sets: CodeSets, status: str
) -> None:
    resources = [
        observation(ENQUIRY_MADE, "2025-01-01", status=status),
        encounter(ANXIETY_DISORDER, "2025-01-01", status=status),
    ]
    assert found(resources, sets) == []


def test_encounter_reason_codes_are_read(sets: CodeSets) -> None:
    (entry,) = read_record([encounter(ANXIETY_DISORDER, "2024-03-02T10:00:00Z")], sets).entries
    assert (entry.category, entry.when, entry.resource_type) == (
        "anxiety",
        datetime.date(2024, 3, 2),
        "Encounter",
    )


@pytest.mark.parametrize(
    ("fields", "when"),
    [
        ({"performedDateTime": "2026-03-02T10:00:00Z"}, datetime.date(2026, 3, 2)),
        (
            {"performedPeriod": {"start": "2026-03-02", "end": "2026-03-04"}},
            datetime.date(2026, 3, 4),
        ),
        ({"performedPeriod": {"start": "2026-03-02"}}, datetime.date(2026, 3, 2)),
        ({"performedString": "last spring"}, None),  # undated: counts in no window
    ],
)
def test_procedure_codes_are_read_and_dated_by_performed(
    sets: CodeSets, fields: dict, when: datetime.date | None
) -> None:
    """A termination of pregnancy is often recorded as a Procedure."""
    resource = procedure(TERMINATION_OF_PREGNANCY, None, **fields)
    (entry,) = read_record([resource], sets).entries
    assert (entry.set, entry.category, entry.when, entry.resource_type) == (
        "trigger",
        "pregnancy-loss",
        when,
        "Procedure",
    )


@pytest.mark.parametrize("status", ["entered-in-error", "not-done"])
def test_mistaken_or_not_done_procedures_are_skipped(sets: CodeSets, status: str) -> None:
    resource = procedure(TERMINATION_OF_PREGNANCY, "2026-03-02", status=status)
    assert found([resource], sets) == []


def test_ctv3_codes_are_found_by_their_own_system(sets: CodeSets) -> None:
    (entry,) = read_record(
        [condition(SINGLE_MAJOR_DEPRESSIVE_EPISODE_CTV3, "2026-01-01")], sets
    ).entries
    assert (entry.system, entry.code, entry.category) == (
        "http://read.info/ctv3",
        "XE1Y0",
        "depression",
    )
    # The same characters under the Read v2 system are another code (none in the sets).
    assert found([condition(("http://read.info/readv2", "XE1Y0"), "2026-01-01")], sets) == []


def test_a_code_in_two_sets_gives_an_entry_for_each(sets: CodeSets) -> None:
    entries = read_record([observation(VICTIM_OF_DOMESTIC_ABUSE, "2020-01-01")], sets).entries
    assert {(e.set, e.category) for e in entries} == {
        ("known-abuse", "victim"),
        ("recording", "victim"),
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Notes summarised or migrated get a new recordedDate: the onset dates the problem.
        ({"onsetDateTime": "2013-05-01", "recordedDate": "2025-02-01"}, datetime.date(2013, 5, 1)),
        ({"recordedDate": "2025-02-01"}, datetime.date(2025, 2, 1)),  # no onset: the fallback
        (
            {"onsetString": "in her twenties", "recordedDate": "2025-02-01"},
            datetime.date(2025, 2, 1),
        ),
        (
            {"abatementDateTime": "2025-03-01", "recordedDate": "2025-12-01"},
            datetime.date(2025, 3, 1),
        ),
        ({"onsetDateTime": "2025-02-01T23:59:00+01:00"}, datetime.date(2025, 2, 1)),
        ({"onsetPeriod": {"start": "2020-01-01", "end": "2024-06-01"}}, datetime.date(2024, 6, 1)),
        (
            {"onsetDateTime": "2023-01-01", "abatementDateTime": "2025-07-01"},
            datetime.date(2025, 7, 1),
        ),
        ({"recordedDate": "2019-03"}, datetime.date(2019, 3, 1)),
        ({"recordedDate": "2019"}, datetime.date(2019, 1, 1)),
        ({"recordedDate": "not a date"}, None),
        ({}, None),
    ],
)
def test_condition_dates(sets: CodeSets, fields: dict, expected: datetime.date | None) -> None:
    (entry,) = read_record([condition(DEPRESSIVE_DISORDER, None) | fields], sets).entries
    assert entry.when == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"effectiveDateTime": "2025-04-01T09:00:00Z", "issued": "2025-05-01T00:00:00Z"},
            datetime.date(2025, 4, 1),
        ),
        (
            {"effectivePeriod": {"start": "2025-01-01", "end": "2025-03-01"}},
            datetime.date(2025, 3, 1),
        ),
        ({"effectiveInstant": "2025-04-02T09:00:00Z"}, datetime.date(2025, 4, 2)),
        # 23:30 UTC in British Summer Time is the next day in England.
        ({"effectiveDateTime": "2025-06-01T23:30:00Z"}, datetime.date(2025, 6, 2)),
        ({"issued": "2025-05-01T00:00:00Z"}, datetime.date(2025, 5, 1)),
    ],
)
def test_observation_dates(sets: CodeSets, fields: dict, expected: datetime.date) -> None:
    (entry,) = read_record([observation(ENQUIRY_MADE, None) | fields], sets).entries
    assert entry.when == expected


def test_prefetch_bundles_and_a_whole_patient_bundle_read_the_same(sets: CodeSets) -> None:
    me = patient("p1", "1990-01-01")
    conditions = [condition(DEPRESSIVE_DISORDER, "2025-01-01", rid="c1")]
    observations = [observation(ENQUIRY_MADE, "2024-01-01", rid="o1")]
    prefetch = {
        "patient": me,
        "conditions": bundle(*conditions),
        "observations": bundle(*observations),
        "encounters": None,
        "household": {"resourceType": "OperationOutcome"},
    }
    from_prefetch = read_record(chain.from_iterable(map(resources_in, prefetch.values())), sets)
    whole = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (me, *conditions, *observations)],
    }
    from_bundle = read_record(resources_in(whole), sets)
    assert from_prefetch == from_bundle
    assert from_prefetch.patient == me
    assert len(from_prefetch.entries) == 2


def test_resources_in_flattens_nested_bundles_and_skips_junk() -> None:
    inner = bundle(patient("x", None))
    outer = {"resourceType": "Bundle", "entry": [{"resource": inner}, "junk", {"resource": None}]}
    assert [r["id"] for r in resources_in(outer)] == ["x"]
    assert list(resources_in(None)) == []
    assert list(resources_in({"no": "type"})) == []


def test_the_patient_is_the_one_asked_for_when_an_id_is_given(sets: CodeSets) -> None:
    son, mum = patient("son", "2012-01-01"), patient("mum", "1990-01-01")
    assert read_record([son, mum], sets).patient == son  # without an id: the first
    assert read_record([son, mum], sets, patient_id="mum").patient == mum
    assert read_record([son], sets, patient_id="mum").patient is None


# --- Issue 11 point 1: entries about another person -----------------------------------------

NHS = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.mark.parametrize(
    ("subject", "kept"),
    [
        ({"reference": "Patient/p1"}, True),
        ({"reference": "https://gp.example/fhir/Patient/p1/_history/2"}, True),
        (None, True),  # no subject: it came from a search for the patient
        ({"reference": "#contained"}, True),  # names no one we can compare
        ({"identifier": {"system": NHS, "value": "999 000 0018"}}, True),  # the patient's own
        ({"reference": "Patient/p2"}, False),
        ({"reference": "https://gp.example/fhir/Patient/p2"}, False),
        ({"reference": "Group/household"}, False),
        ({"identifier": {"system": NHS, "value": "9990000026"}}, False),
    ],
)
def test_entries_about_another_person_are_ignored_and_counted(
    sets: CodeSets, subject: dict | None, kept: bool
) -> None:
    resources = [
        condition(DEPRESSIVE_DISORDER, "2026-01-01", rid="c"),
        observation(VICTIM_OF_DOMESTIC_ABUSE, "2026-01-01", rid="o"),
        encounter(ANXIETY_DISORDER, "2026-01-01", rid="e"),
        procedure(TERMINATION_OF_PREGNANCY, "2026-01-01", rid="p"),
    ]
    for resource in resources:
        if subject is None:
            del resource["subject"]
        else:
            resource["subject"] = subject
    person = patient("p1", "1990-01-01", nhs="9990000018")
    coded = 5  # the four resources' entries (a termination is in two categories)
    for patient_id in ("p1", None):  # the service names the patient; the simulation need not
        record = read_record([*resources, person], sets, patient_id=patient_id)
        assert len(record.entries) == (coded if kept else 0)
        assert record.others == (0 if kept else coded)


def test_a_patient_field_is_read_when_there_is_no_subject(sets: CodeSets) -> None:
    other = condition(DEPRESSIVE_DISORDER, "2026-01-01")
    del other["subject"]
    other["patient"] = {"reference": "Patient/p2"}
    record = read_record([patient("p1", "1990-01-01"), other], sets, patient_id="p1")
    assert record.entries == () and record.others == 1
