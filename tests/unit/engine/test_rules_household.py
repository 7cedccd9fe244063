"""The household rules of `docs/rules.md`, one test (or table) per rule: `decide` over plain
data. Rule 6 (a MAPPA card per flagged member; a flag without risk levels is critical),
rule 7 (Think Family: the children, who left, who is linked), rule 8 (the information card for
a household that could not be checked, when nothing else shows), and the seed case."""

import pytest

from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.household import TOO_LARGE, UNCHECKED, Household, HouseholdMember
from iris_prompt.engine.record import PatientRecord
from iris_prompt.engine.risk_flags import MappaRisk
from iris_prompt.engine.rules import RuleSettings, decide
from tests.support.records import (
    ANXIETY_DISORDER,
    DEPRESSIVE_DISORDER,
    VICTIM_OF_DOMESTIC_ABUSE,
    condition,
    observation,
    patient,
)
from tests.unit.engine.rules_support import (
    ADULT,
    NOW,
    PARTNER_WITH_FLAG,
    RECENT_DEPRESSION,
    SON,
    ago,
    run,
)

# --- 6. MAPPA and 7. Think Family ---------------------------------------------------------


def test_a_flagged_household_member_gives_a_mappa_card_without_any_trigger(sets: CodeSets) -> None:
    decision = run(sets, household=Household((PARTNER_WITH_FLAG, SON)))
    assert decision.cards == ("mappa",)
    assert decision.mappa == (PARTNER_WITH_FLAG,)
    assert decision.children_ages == (8,)
    assert decision.household_checked


def test_one_mappa_card_per_flagged_member(sets: CodeSets) -> None:
    other = HouseholdMember(None, 40, MappaRisk(()))
    assert run(sets, household=Household((PARTNER_WITH_FLAG, other))).cards == ("mappa", "mappa")


def test_children_are_the_members_under_18_youngest_first(sets: CodeSets) -> None:
    members = tuple(HouseholdMember(None, age, None) for age in (17, 18, 3, None, 45))
    decision = run(sets, RECENT_DEPRESSION, household=Household(members))
    assert decision.children_ages == (3, 17)


def test_a_household_not_looked_up_or_unchecked_is_reported(sets: CodeSets) -> None:
    for household in (None, UNCHECKED):
        decision = run(sets, RECENT_DEPRESSION, household=household)
        assert decision.enquiry and not decision.household_checked and decision.mappa == ()


def test_the_seed_case(sets: CodeSets) -> None:
    """Mother of 34, anxiety and depression; partner with an active MAPPA flag; son of 8."""
    decision = run(
        sets,
        condition(ANXIETY_DISORDER, ago(200), rid="anx"),
        condition(DEPRESSIVE_DISORDER, ago(40), rid="dep"),
        household=Household((PARTNER_WITH_FLAG, SON)),
    )
    assert decision.cards == ("enquiry", "mappa")
    assert decision.mappa[0].mappa is not None and decision.mappa[0].mappa.critical
    assert decision.children_ages == (8,)
    assert [t.category for t in decision.triggers] == ["depression", "anxiety"]


def test_decide_needs_code_sets_for_an_eligible_patient() -> None:
    record = PatientRecord(ADULT, ())
    with pytest.raises(ValueError):
        decide(
            record, None, now=NOW, household=None, settings=RuleSettings(), user_type="Practitioner"
        )


# --- The clinical review's points 14 to 17 -----------------------------------------------


def test_a_mappa_flag_without_risk_levels_is_critical() -> None:
    """Point 16."""
    assert MappaRisk(()).critical and MappaRisk((), unreadable=True).critical
    assert not MappaRisk((("public", "high"),)).critical


UNCHECKED_KNOWN = Household((), checked=False, members_known=True)
UNCHECKED_UNKNOWN = Household((), checked=False)


@pytest.mark.parametrize(
    ("person", "household", "shown"),
    [
        (patient("p1", "2015-01-01"), UNCHECKED_UNKNOWN, True),  # a child
        (patient("p1", None), UNCHECKED_UNKNOWN, False),  # age unknown, nobody known: no card
        (patient("p1", None), UNCHECKED_KNOWN, True),
        (ADULT, UNCHECKED_KNOWN, True),  # the household is known to have members
        (ADULT, UNCHECKED_UNKNOWN, False),
        (ADULT, TOO_LARGE, True),  # a Group too large to check has people in it
        (ADULT, Household((SON,), not_checked=("household-group",)), True),  # partly checked
        (ADULT, Household((SON,)), False),  # checked: nothing to say
        (ADULT, None, False),  # not looked up (the simulation without households)
    ],
)
def test_a_failed_household_check_with_nothing_else_to_show_gives_the_info_card(
    sets: CodeSets, person: dict, household: Household | None, shown: bool
) -> None:
    """Point 14."""
    decision = run(sets, person=person, household=household)
    assert decision.cards == (("unchecked",) if shown else ())
    assert decision.no_cards_reason is None or not shown


def test_no_info_card_when_another_card_shows(sets: CodeSets) -> None:
    assert run(sets, RECENT_DEPRESSION, household=UNCHECKED_KNOWN).cards == ("enquiry",)
    known = observation(VICTIM_OF_DOMESTIC_ABUSE, ago(3), rid="k")
    assert run(sets, known, household=UNCHECKED_KNOWN).cards == ("known-abuse",)


def test_people_who_left_the_household_are_checked_but_not_counted_as_its_children(
    sets: CodeSets,
) -> None:
    """Point 15: a recent leaver's flag shows; Think Family counts who is there."""
    left = HouseholdMember("partner", 33, MappaRisk(()), presence="left")
    child_gone = HouseholdMember(None, 5, None, presence="left")
    decision = run(sets, RECENT_DEPRESSION, household=Household((left, child_gone, SON)))
    assert decision.cards == ("enquiry", "mappa") and decision.mappa == (left,)
    assert decision.children_ages == (8,)
    assert decision.household_presence == ("left", "left", "member")


def test_a_linked_child_is_counted_and_said_to_be_linked(sets: CodeSets) -> None:
    """Point 17: a RelatedPerson's child is counted, without claiming a shared home."""
    linked = HouseholdMember("daughter", 6, None, presence="linked")
    decision = run(sets, RECENT_DEPRESSION, household=Household((linked,)))
    assert decision.children_ages == (6,) and decision.children_linked
