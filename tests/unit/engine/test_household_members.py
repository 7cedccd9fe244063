"""Who is in the household, from Group, RelatedPerson and Patient resources: the Group's
current members, related people (linked, not assumed to share a home), ages and
relationships but never names, memberships ended at their precision or time, recent leavers,
and a household too large to check. Their MAPPA flags are `test_household_flags.py`."""

import datetime
from typing import Any

import pytest

from iris_prompt.engine.household import (
    TOO_LARGE,
    Household,
    HouseholdMember,
    age_on,
    household_from,
)
from iris_prompt.engine.household_plan import household_plan
from iris_prompt.engine.membership import group_members
from tests.support.records import household_group, mappa_flag, patient, related_person
from tests.unit.engine.household_support import TODAY, group_member_ids


def test_group_members_other_than_the_patient() -> None:
    group = household_group("mum", "partner", "son")
    assert group_member_ids([group], "mum", TODAY) == ["partner", "son"]


def test_a_group_without_the_patient_is_not_their_household() -> None:
    assert group_member_ids([household_group("a", "b")], "mum", TODAY) == []


def test_inactive_or_departed_members_and_other_group_types_are_left_out() -> None:
    group = household_group("mum", "gone", "left", "here")
    group["member"][1]["inactive"] = True
    group["member"][2]["period"] = {"start": "2020-01-01", "end": "2025-12-31"}
    assert group_member_ids([group], "mum", TODAY) == ["here"]
    animals = household_group("mum", "dog") | {"type": "animal"}
    assert group_member_ids([animals], "mum", TODAY) == []
    retired = household_group("mum", "x") | {"active": False}
    assert group_member_ids([retired], "mum", TODAY) == []


def test_absolute_and_versioned_references_are_understood() -> None:
    group = household_group("mum")
    group["member"] += [
        {"entity": {"reference": "https://gp.example/fhir/Patient/partner/_history/3"}},
        {"entity": {"reference": "RelatedPerson/rp1"}},
        {"entity": {"display": "no reference"}},
    ]
    assert group_member_ids([group], "mum", TODAY) == ["partner"]


def test_ages_and_relationships_never_names() -> None:
    household = household_from(
        patient_id="mum",
        today=TODAY,
        groups=[household_group("mum", "partner", "son")],
        related_persons=[related_person("mum", "9990000018", "DOMPART", name="Fictional Partner")],
        patients=[
            patient("partner", "1992-04-01", nhs="9990000018", name=[{"family": "Partner"}]),
            patient("son", "2017-09-01"),
        ],
    )
    assert household == Household(
        (
            HouseholdMember(relationship="partner", age=33, mappa=None),
            HouseholdMember(relationship=None, age=8, mappa=None),
        ),
        checked=True,
    )
    assert "Fictional" not in repr(household) and "9990000018" not in repr(household)


def test_a_related_person_whose_nhs_number_resolves_is_checked_as_linked_not_as_a_member() -> None:
    """Co-residence is not assumed: a RelatedPerson proves a relationship, not a shared home."""
    household = household_from(
        patient_id="mum",
        today=TODAY,
        related_persons=[related_person("mum", "999 000 0018", "HUSB")],
        patients=[patient("him", "1980-01-01", nhs="9990000018")],
    )
    assert household.members == (HouseholdMember("husband", 46, None, presence="linked"),)


def test_a_related_person_the_group_lists_is_a_household_member() -> None:
    household = household_from(
        patient_id="mum",
        today=TODAY,
        groups=[household_group("mum", "him")],
        related_persons=[related_person("mum", "9990000018", "HUSB")],
        patients=[patient("him", "1980-01-01", nhs="9990000018")],
    )
    assert household.members == (HouseholdMember("husband", 46, None, presence="member"),)


def test_a_related_person_without_a_matching_patient_is_not_a_member() -> None:
    household = household_from(
        patient_id="mum",
        today=TODAY,
        related_persons=[
            related_person("mum", "9990000018", "HUSB"),
            related_person("mum", None, "WIFE", rid="rp2"),
            related_person("someone-else", "9990000026", "SON", rid="rp3"),
        ],
        patients=[patient("other", "1980-01-01", nhs="9990000026")],
    )
    assert household.members == ()


def test_relationship_in_free_text_only_is_not_shown() -> None:
    person = related_person("mum", "9990000018", "NOT-A-ROLE-CODE")
    household = household_from(
        patient_id="mum",
        today=TODAY,
        related_persons=[person],
        patients=[patient("him", "1980-01-01", nhs="9990000018")],
    )
    assert household.members[0].relationship is None


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [
        ("2010-03-01", datetime.date(2026, 3, 1), 16),  # 16th birthday
        ("2010-03-02", datetime.date(2026, 3, 1), 15),  # the day before
        ("2010-03", datetime.date(2026, 3, 30), 15),  # could be born 31 March
        ("2010-03", datetime.date(2026, 3, 31), 16),
        ("2010", datetime.date(2026, 12, 30), 15),  # could be born 31 December
        ("2008-02-29", datetime.date(2026, 2, 28), 17),  # leap-day birthday
        ("2030-01-01", datetime.date(2026, 1, 1), None),  # in the future
        (None, datetime.date(2026, 1, 1), None),
        ("garbage", datetime.date(2026, 1, 1), None),
    ],
)
def test_age_on(birth: str | None, today: datetime.date, age: int | None) -> None:
    assert age_on(birth, today) == age


@pytest.mark.parametrize(("end", "member"), [("2026", True), ("2026-03", True), ("2026-02", False)])
def test_group_membership_ends_at_its_precision(end: str, member: bool) -> None:
    group = household_group("mum", "partner")
    group["member"][1]["period"] = {"end": end}
    assert group_member_ids([group], "mum", TODAY) == (["partner"] if member else [])


def test_household_from_compares_a_timed_membership_end_with_the_time_of_the_call() -> None:
    group = household_group("mum", "partner")
    group["member"][1]["period"] = {"end": "2026-03-01T09:00:00Z"}
    before = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
    after = datetime.datetime(2026, 3, 1, 10, 0, tzinfo=datetime.UTC)
    presence = [
        [
            m.presence
            for m in household_from(patient_id="mum", today=TODAY, groups=[group], now=now).members
        ]
        for now in (before, after)
    ]
    assert presence == [["member"], ["left"]]  # after: a person who recently left


def test_a_related_person_whose_period_ended_over_a_year_ago_is_not_checked() -> None:
    former = related_person("mum", "9990000018", "FMRSPS") | {"period": {"end": "2025-02-28"}}
    current = related_person("mum", "9990000026", "HUSB", rid="rp2") | {"period": {"end": "2026"}}
    household = household_from(
        patient_id="mum",
        today=TODAY,
        related_persons=[former, current],
        patients=[
            patient("ex", "1980-01-01", nhs="9990000018"),
            patient("him", "1981-01-01", nhs="9990000026"),
        ],
    )
    assert [m.relationship for m in household.members] == ["husband"]


# --- Recent leavers, and people linked to the record (the clinical review's points 15, 17) -


@pytest.mark.parametrize(
    ("member", "standing"),
    [
        ({}, "member"),
        ({"period": {"end": "2026-02-28"}}, "left"),  # yesterday
        ({"period": {"end": "2025-03-01"}}, "left"),  # 12 months ago to the day
        ({"period": {"end": "2025-02-28"}}, None),  # over 12 months ago
        ({"inactive": True, "period": {"end": "2025-09-01"}}, "left"),
        ({"inactive": True}, None),  # when they left is unknown
    ],
)
def test_a_member_who_left_within_12_months_is_still_checked(
    member: dict[str, Any], standing: str | None
) -> None:
    group = household_group("mum", "partner")
    group["member"][1] |= member
    found = group_members([group], "mum", TODAY)
    assert found == ({"partner": standing} if standing else {})


def test_when_the_patient_left_the_others_are_people_who_recently_left() -> None:
    group = household_group("mum", "partner", "son")
    group["member"][0]["period"] = {"end": "2026-01-31"}  # she moved out in January
    assert group_members([group], "mum", TODAY) == {"partner": "left", "son": "left"}
    group["member"][0]["period"] = {"end": "2024-01-31"}
    assert group_members([group], "mum", TODAY) == {}


def test_a_current_membership_wins_over_a_past_one() -> None:
    old = household_group("mum", "partner")
    old["member"][1]["period"] = {"end": "2026-01-01"}
    new = household_group("mum", "partner") | {"id": "g2"}
    assert group_members([old, new], "mum", TODAY) == {"partner": "member"}
    assert group_members([new, old], "mum", TODAY) == {"partner": "member"}


def test_a_recently_ended_related_person_is_checked_as_having_left() -> None:
    former = related_person("mum", "9990000018", "FMRSPS") | {"period": {"end": "2025-12-31"}}
    household = household_from(
        patient_id="mum",
        today=TODAY,
        related_persons=[former],
        patients=[patient("ex", "1980-01-01", nhs="9990000018")],
        flags=[mappa_flag("ex", risks={"known-adult": "high"})],
    )
    (member,) = household.members
    assert member.presence == "left" and member.relationship == "former spouse"
    assert member.mappa is not None and member.mappa.critical


# --- A household too large to check ---------------------------------------------------------


def test_a_group_larger_than_a_household_is_too_large_and_nobody_is_read() -> None:
    group = household_group("mum", *(f"m{n}" for n in range(21)))
    plan = household_plan(patient_id="mum", today=TODAY, groups=[group])
    with pytest.raises(StopIteration) as done:
        next(plan)  # asks for nothing
    assert done.value.value == TOO_LARGE and TOO_LARGE.too_large and not TOO_LARGE.checked
    assert household_from(patient_id="mum", today=TODAY, groups=[group]) == TOO_LARGE


def test_a_household_of_the_largest_size_is_read() -> None:
    group = household_group("mum", *(f"m{n}" for n in range(20)))
    requests = next(household_plan(patient_id="mum", today=TODAY, groups=[group]))
    assert len(requests) == 40  # each member's Patient and Flags
    smaller = household_plan(patient_id="mum", today=TODAY, groups=[group], max_members=5)
    with pytest.raises(StopIteration) as done:
        next(smaller)
    assert done.value.value == TOO_LARGE


def test_too_many_related_people_are_too_large_too() -> None:
    people = [related_person("mum", f"{9000000000 + n}", "FRND", rid=f"r{n}") for n in range(21)]
    plan = household_plan(patient_id="mum", today=TODAY, related_persons=people)
    with pytest.raises(StopIteration) as done:
        next(plan)
    assert done.value.value == TOO_LARGE
