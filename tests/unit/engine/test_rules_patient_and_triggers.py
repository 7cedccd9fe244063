"""The rules of `docs/rules.md` that decide who is prompted and why, one test (or table) per
rule: `decide` over plain data. Rule 1 (clinicians only), rule 2 (aged 16 or over for the
enquiry, MAPPA for any age; deceased patients) and rule 3 (triggers within their lookback,
copies of an entry counted once). Known abuse and suppression are in
`test_rules_known_abuse_and_enquiries.py`, the household in `test_rules_household.py`."""

import datetime

import pytest

from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.household import Household
from tests.support.records import (
    ANXIETY_DISORDER,
    ANXIETY_STATE_READ,
    DEPRESSIVE_DISORDER,
    VICTIM_OF_DOMESTIC_ABUSE,
    condition,
    observation,
    patient,
)
from tests.unit.engine.rules_support import (
    ADULT,
    PARTNER_WITH_FLAG,
    RECENT_DEPRESSION,
    SON,
    TODAY,
    ago,
    run,
)

# --- 1. Only clinicians ------------------------------------------------------------------


@pytest.mark.parametrize("user_type", ["Patient", "RelatedPerson", "Device", ""])
def test_no_cards_at_all_for_anyone_but_clinicians(sets: CodeSets, user_type: str) -> None:
    decision = run(
        sets,
        RECENT_DEPRESSION,
        observation(VICTIM_OF_DOMESTIC_ABUSE, ago(10)),
        household=Household((PARTNER_WITH_FLAG, SON)),
        user_type=user_type,
    )
    assert decision.cards == ()
    assert decision.no_cards_reason == "patient-facing caller"
    assert decision.triggers == () and decision.mappa == () and decision.children_ages == ()


@pytest.mark.parametrize("user_type", ["Practitioner", "PractitionerRole"])
def test_clinicians_are_prompted(sets: CodeSets, user_type: str) -> None:
    assert run(sets, RECENT_DEPRESSION, user_type=user_type).cards == ("enquiry",)


# --- 2. Age 16 or over for the enquiry; MAPPA for a patient of any age ------------------------


@pytest.mark.parametrize(
    ("birth", "withheld"),
    [
        ("2010-03-01", None),  # 16 today
        ("2010-03-02", "under 16"),  # 16 tomorrow
        ("2010-03", "under 16"),  # might be born after 1 March
        ("2015-01-01", "under 16"),
        (None, "age unknown"),
        (20100301, "age unknown"),
        ("01/03/2010", "age unknown"),
        # 2010-03-01 in Arabic-Indic digits: not a FHIR date, whose digits are 0-9.
        ("\u0662\u0660\u0661\u0660-\u0660\u0663-\u0660\u0661", "age unknown"),
    ],
)
def test_the_enquiry_is_for_patients_aged_16_or_over_mappa_for_any_age(
    sets: CodeSets, birth: object, withheld: str | None
) -> None:
    """A MAPPA flag on a household member reaches the clinician of a child too: risk to children
    is exactly what the clinician of a child must know (Child T was 8)."""
    person = patient("p1", None) | ({"birthDate": birth} if birth is not None else {})
    flagged = run(sets, RECENT_DEPRESSION, person=person, household=Household((PARTNER_WITH_FLAG,)))
    assert flagged.enquiry_withheld == withheld and flagged.no_cards_reason is None
    assert flagged.cards == (("mappa",) if withheld else ("enquiry", "mappa"))
    alone = run(sets, RECENT_DEPRESSION, person=person)
    assert alone.cards == (() if withheld else ("enquiry",))
    assert alone.no_cards_reason == withheld


def test_a_child_patient_gets_no_known_abuse_card_but_the_mappa_card(sets: CodeSets) -> None:
    child = patient("p1", "2018-03-01")
    decision = run(
        sets,
        observation(VICTIM_OF_DOMESTIC_ABUSE, ago(10)),
        person=child,
        household=Household((PARTNER_WITH_FLAG, SON)),
    )
    assert decision.cards == ("mappa",) and decision.children_ages == (8,)
    assert decision.age == 8 and decision.triggers == () and decision.known_abuse_entries == ()


def test_no_patient_resource_means_age_unknown(sets: CodeSets) -> None:
    assert run(sets, RECENT_DEPRESSION, person=None).no_cards_reason == "age unknown"


@pytest.mark.parametrize(
    "deceased", [{"deceasedBoolean": True}, {"deceasedDateTime": "2026-01-01"}]
)
def test_no_cards_for_a_deceased_patient(sets: CodeSets, deceased: dict) -> None:
    decision = run(sets, RECENT_DEPRESSION, person=ADULT | deceased)
    assert decision.cards == () and decision.no_cards_reason == "deceased"


def test_deceased_false_is_alive(sets: CodeSets) -> None:
    assert run(sets, RECENT_DEPRESSION, person=ADULT | {"deceasedBoolean": False}).enquiry


# --- 3. Triggers within their lookback ----------------------------------------------------


def test_nothing_coded_means_no_cards(sets: CodeSets) -> None:
    decision = run(sets)
    assert decision.cards == () and decision.no_cards_reason is None and decision.age == 34


@pytest.mark.parametrize(
    ("code", "days", "fires"),
    [
        (DEPRESSIVE_DISORDER, 0, True),
        (DEPRESSIVE_DISORDER, 730, True),  # depression: "2 years" = 730 days
        (DEPRESSIVE_DISORDER, 731, False),
        (ANXIETY_STATE_READ, 700, True),
        (ANXIETY_DISORDER, 365 * 13, False),  # a 2013 anxiety code alone does not fire in 2026
        (DEPRESSIVE_DISORDER, -1, False),  # dated after today: not a recorded fact yet
    ],
)
def test_triggers_count_within_their_categorys_lookback(
    sets: CodeSets, code: tuple[str, str], days: int, fires: bool
) -> None:
    decision = run(sets, condition(code, ago(days)))
    assert decision.enquiry is fires
    assert len(decision.triggers) == int(fires)


def test_an_undated_trigger_does_not_count_in_a_windowed_category(sets: CodeSets) -> None:
    assert not run(sets, condition(DEPRESSIVE_DISORDER, None)).enquiry


def test_an_old_problem_still_marked_active_does_not_fire(sets: CodeSets) -> None:
    old = condition(
        ANXIETY_DISORDER,
        None,
        clinical="active",
        onsetDateTime="2013-04-01",
        recordedDate="2013-04-01",
    )
    assert not run(sets, old).enquiry


def test_a_recently_resolved_episode_fires(sets: CodeSets) -> None:
    resolved = condition(
        DEPRESSIVE_DISORDER,
        None,
        clinical="resolved",
        onsetDateTime="2022-01-01",
        abatementDateTime=ago(100),
    )
    assert run(sets, resolved).enquiry


def test_refuted_trigger_does_not_fire(sets: CodeSets) -> None:
    assert not run(sets, condition(DEPRESSIVE_DISORDER, ago(5), verification="refuted")).enquiry


def test_triggers_are_listed_newest_first(sets: CodeSets) -> None:
    decision = run(
        sets,
        condition(ANXIETY_DISORDER, ago(300), rid="a"),
        condition(DEPRESSIVE_DISORDER, ago(3), rid="b"),
        observation(ANXIETY_STATE_READ, ago(100), rid="c"),
    )
    assert [t.when for t in decision.triggers] == [
        TODAY - datetime.timedelta(days=d) for d in (3, 100, 300)
    ]


# --- The clinical review's point 6 -------------------------------------------------------


def test_copies_of_an_entry_count_once(sets: CodeSets) -> None:
    """Point 6: the same code on the same day is one entry, newest first as ever."""
    copies = [condition(DEPRESSIVE_DISORDER, ago(30), rid=f"d{n}") for n in range(7)]
    decision = run(sets, *copies, condition(ANXIETY_DISORDER, ago(40), rid="a"))
    assert [t.category for t in decision.triggers] == ["depression", "anxiety"]
    other_day = run(sets, *copies, condition(DEPRESSIVE_DISORDER, ago(31), rid="d-other"))
    assert len(other_day.triggers) == 2
