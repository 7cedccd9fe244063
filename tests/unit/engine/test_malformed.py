"""Malformed fields: every field read is type-checked, and a malformed one costs only itself.

Records and household resources are never validated whole (too slow), so a list where a string
belongs, or a number where an object belongs, must neither crash the call nor take other
entries, members or flags down with it. First tables of single faults with what each must still
give, then every field of every resource replaced by every kind of wrong value.
"""

import copy
import datetime
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.household import Household, HouseholdMember, essentials, household_from
from iris_prompt.engine.record import read_record
from iris_prompt.engine.risk_flags import MappaRisk
from tests.support.records import (
    DEPRESSIVE_DISORDER,
    ENQUIRY_MADE,
    condition,
    encounter,
    household_group,
    mappa_flag,
    observation,
    patient,
    related_person,
)

TODAY = datetime.date(2026, 3, 1)
WRONG = [5, 2.5, True, "x", None, [], {}, ["final"], {"code": "x"}, [5], [{"url": []}]]


def with_field(resource: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A copy of `resource` with the field at a dotted path ("code.coding") set to `value`."""
    changed = copy.deepcopy(resource)
    *parents, last = path.split(".")
    target = changed
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return changed


# --- the record: single faults --------------------------------------------------------------

RECORD = [
    observation(ENQUIRY_MADE, "2025-01-01"),
    condition(DEPRESSIVE_DISORDER, "2025-01-01"),
    encounter(DEPRESSIVE_DISORDER, "2025-01-01"),
]


@pytest.mark.parametrize(
    ("which", "path", "value", "read", "why"),
    [
        (0, "status", ["final"], True, "a status that is no string cannot say entered-in-error"),
        (0, "status", {"code": "cancelled"}, True, "nor cancelled"),
        (0, "effectiveDateTime", 20250101, True, "undated, still an entry"),
        (0, "code", "700410005", False, "no CodeableConcept, no code"),
        (0, "code.coding", {"system": ENQUIRY_MADE[0], "code": ENQUIRY_MADE[1]}, False, "a dict"),
        (0, "code.coding.0", "700410005", False, "a coding that is a string"),
        (1, "verificationStatus", ["refuted"], True, "unreadable: not refuted"),
        (1, "verificationStatus", {"coding": 3}, True, "unreadable: not refuted"),
        (1, "verificationStatus.coding.0.code", ["refuted"], True, "unreadable: not refuted"),
        (1, "clinicalStatus", 7, True, "clinicalStatus does not decide"),
        (1, "recordedDate", ["2025-01-01"], True, "undated, still an entry"),
        (2, "status", ["cancelled"], True, "unreadable: not cancelled"),
        (2, "period", "2025", True, "undated, still an entry"),
        (2, "reasonCode", {"coding": []}, False, "reasonCode is a list"),
    ],
)
def test_one_malformed_field_costs_only_its_own_entry(
    sets: CodeSets, which: int, path: str, value: object, read: bool, why: str
) -> None:
    resources = list(RECORD)
    resources[which] = with_field(resources[which], path, value)
    read_from = [r for i, r in enumerate(RECORD) if i != which or read]
    found = read_record(resources, sets).entries
    # One entry per resource here: each holds one code of one set.
    assert sorted(e.resource_type for e in found) == sorted(r["resourceType"] for r in read_from), (
        why
    )


# --- the household: single faults ------------------------------------------------------------


def seed_household() -> dict[str, dict[str, Any]]:
    group = household_group("mum", "partner", "son", "lodger")
    group["member"][3]["period"] = {"start": "2020-01-01"}
    return {
        "group": group,
        "rp": related_person("mum", "9990000018", "DOMPART"),
        "partner": patient("partner", "1992-04-01", nhs="9990000018"),
        "son": patient("son", "2017-09-01"),
        "lodger": patient("lodger", "1980-01-01"),
        "flag": mappa_flag("partner", risks={"known-adult": "very-high"}),
        "lodger-flag": mappa_flag("lodger", rid="f2", risks={"public": "medium"}),
    }


def household_of(resources: dict[str, dict[str, Any]]) -> Household:
    return household_from(
        patient_id="mum",
        today=TODAY,
        groups=[resources["group"]],
        related_persons=[resources["rp"]],
        patients=[resources[k] for k in ("partner", "son", "lodger")],
        flags=[resources["flag"], resources["lodger-flag"]],
    )


PARTNER = HouseholdMember("partner", 33, MappaRisk((("known-adult", "very-high"),)))
SON = HouseholdMember(None, 8, None)
LODGER = HouseholdMember(None, 46, MappaRisk((("public", "medium"),)))
NO_WORDS = replace(PARTNER, relationship=None)
NO_RISK = replace(LODGER, mappa=None)


def test_the_household_as_built() -> None:
    assert household_of(seed_household()).members == (PARTNER, SON, LODGER)


@pytest.mark.parametrize(
    ("which", "path", "value", "members", "why"),
    [
        ("group", "member.3", 5, (PARTNER, SON), "one member unreadable: that member only"),
        ("group", "member.3.entity", ["Patient/lodger"], (PARTNER, SON), "that member only"),
        ("group", "member.3.period", "2020", (PARTNER, SON, LODGER), "unreadable period: ignored"),
        ("group", "member.3.period.end", 5, (PARTNER, SON, LODGER), "unreadable end: not ended"),
        ("group", "type", ["person"], (PARTNER, SON, LODGER), "unreadable type: ignored"),
        (
            "group",
            "member",
            5,
            (replace(PARTNER, presence="linked"),),
            "no members readable; the partner by NHS number, linked to the record",
        ),
        ("rp", "identifier", 7, (NO_WORDS, SON, LODGER), "no words"),
        ("rp", "relationship", 5, (NO_WORDS, SON, LODGER), "no words"),
        ("rp", "relationship.0.coding.0.code", ["DOMPART"], (NO_WORDS, SON, LODGER), "no words"),
        ("partner", "birthDate", 19920401, (replace(PARTNER, age=None), SON, LODGER), "age"),
        ("partner", "identifier", {"value": "x"}, (NO_WORDS, SON, LODGER), ""),
        ("son", "id", ["son"], (PARTNER, replace(SON, age=None), LODGER), "unmatched: age"),
        ("lodger-flag", "status", ["active"], (PARTNER, SON, NO_RISK), "own"),
        ("lodger-flag", "code", 5, (PARTNER, SON, NO_RISK), "not MAPPA"),
        ("lodger-flag", "code.coding", {"code": "x"}, (PARTNER, SON, NO_RISK), ""),
        ("lodger-flag", "subject", 5, (PARTNER, SON, NO_RISK), "no subject"),
        ("lodger-flag", "period", "2024", (PARTNER, SON, LODGER), "unreadable period: ignored"),
        ("lodger-flag", "period.end", 5, (PARTNER, SON, LODGER), "unreadable end: not ended"),
    ],
)
def test_one_malformed_field_costs_only_its_own_member_or_flag(
    which: str, path: str, value: object, members: tuple, why: str
) -> None:
    resources = seed_household()
    resources[which] = with_field(resources[which], path, value)
    assert household_of(resources).members == members, why


# --- every field, every wrong value ---------------------------------------------------------


def paths(value: object, prefix: str = "") -> Iterator[str]:
    """Every dotted path into a resource (object keys and list indexes)."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        path = f"{prefix}{key}"
        yield path
        yield from paths(item, path + ".")


def test_no_wrong_value_anywhere_in_a_record_raises(sets: CodeSets) -> None:
    person = patient("p1", "1990-01-01", nhs="9990000018")
    resources = [person, *RECORD]
    tried = 0
    for index, resource in enumerate(resources):
        for path in paths(resource):
            for value in WRONG:
                changed = list(resources)
                changed[index] = with_field(resource, path, value)
                read_record(changed, sets)
                tried += 1
    assert tried > 500


def test_no_wrong_value_anywhere_in_a_household_raises() -> None:
    resources = seed_household()
    resources["flag"]["period"] = {"start": "2020-01-01", "end": "2030-01-01"}
    tried = 0
    for which, resource in resources.items():
        for path in paths(resource):
            for value in WRONG:
                changed = resources | {which: with_field(resource, path, value)}
                household = household_of(changed)
                assert household.checked
                # What the lookup's cache keeps builds the same household.
                kept = {k: essentials(r) or {} for k, r in changed.items()}
                assert household_of(kept) == household, (which, path, value)
                tried += 1
    assert tried > 1000
