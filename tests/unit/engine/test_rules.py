"""THE rules, one test (or table) per rule: `decide` over plain data."""

import datetime

import pytest

from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.household import TOO_LARGE, UNCHECKED, Household, HouseholdMember
from iris_prompt.engine.record import PatientRecord, read_record
from iris_prompt.engine.risk_flags import MappaRisk
from iris_prompt.engine.rules import Decision, RuleSettings, decide
from tests.conftest import bundled_codesets
from tests.support.records import (
    ABUSE_VICTIM_IN_HOUSEHOLD,
    ANXIETY_DISORDER,
    ANXIETY_STATE_READ,
    DEPRESSIVE_DISORDER,
    ENQUIRY_DECLINED,
    ENQUIRY_MADE,
    ENQUIRY_MADE_READ,
    ENQUIRY_NOT_MADE,
    HISTORY_OF_DOMESTIC_VIOLENCE_READ,
    VICTIM_OF_DOMESTIC_ABUSE,
    condition,
    observation,
    patient,
)

NOW = datetime.datetime(2026, 3, 1, 10, 30, tzinfo=datetime.UTC)
TODAY = NOW.date()
ADULT = patient("p1", "1991-06-01")  # 34 today


@pytest.fixture(scope="module")
def sets() -> CodeSets:
    return bundled_codesets().current


def ago(days: int) -> str:
    return (TODAY - datetime.timedelta(days=days)).isoformat()


def run(
    sets: CodeSets,
    *resources: dict,
    person: dict | None = ADULT,
    household: Household | None = None,
    user_type: str = "Practitioner",
    settings: RuleSettings | None = None,
) -> Decision:
    record = read_record([r for r in (person, *resources) if r is not None], sets)
    return decide(
        record,
        sets,
        now=NOW,
        household=household,
        settings=settings or RuleSettings(),
        user_type=user_type,
    )


RECENT_DEPRESSION = condition(DEPRESSIVE_DISORDER, ago(30), rid="dep")
PARTNER_WITH_FLAG = HouseholdMember(
    "partner", 33, MappaRisk((("known-adult", "very-high"), ("children", "medium")))
)
SON = HouseholdMember("son", 8, None)


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


# --- 4. Known abuse -----------------------------------------------------------------------


def test_known_abuse_shows_the_known_abuse_card_instead_of_the_enquiry(sets: CodeSets) -> None:
    decision = run(sets, RECENT_DEPRESSION, observation(VICTIM_OF_DOMESTIC_ABUSE, "2015-06-01"))
    assert decision.cards == ("known-abuse",)
    assert not decision.enquiry
    assert [e.category for e in decision.known_abuse_entries] == ["victim"]
    assert len(decision.triggers) == 1  # still reported: the card says why now


def test_known_abuse_alone_shows_the_card(sets: CodeSets) -> None:
    assert run(sets, condition(HISTORY_OF_DOMESTIC_VIOLENCE_READ, "2009-01-01")).cards == (
        "known-abuse",
    )


def test_known_abuse_recorded_as_resolved_is_still_known(sets: CodeSets) -> None:
    resolved = condition(VICTIM_OF_DOMESTIC_ABUSE, "2018-01-01", clinical="resolved")
    assert run(sets, resolved).known_abuse


def test_an_undated_known_abuse_entry_counts(sets: CodeSets) -> None:
    assert run(sets, observation(VICTIM_OF_DOMESTIC_ABUSE, None)).known_abuse


def test_abuse_in_the_household_is_a_reason_to_ask_not_known_abuse_of_this_patient(
    sets: CodeSets,
) -> None:
    """ "Domestic abuse victim in household" does not say who is harmed (it is recorded for the
    children and for the person causing harm too): it prompts a first enquiry, never the
    known-abuse card."""
    in_household = observation(ABUSE_VICTIM_IN_HOUSEHOLD, ago(100))
    decision = run(sets, in_household)
    assert decision.cards == ("enquiry",)
    assert not decision.known_abuse and decision.known_abuse_entries == ()
    assert [e.category for e in decision.triggers] == ["abuse-in-household"]
    # Like any trigger, a recent recorded enquiry holds it back.
    asked = observation(ENQUIRY_MADE, ago(40))
    assert run(sets, in_household, asked).cards == ()


@pytest.mark.parametrize(
    ("when", "fires"), [("1994-06-01", False), (ago(731), False), (ago(700), True)]
)
def test_abuse_in_the_household_counts_for_two_years_not_for_ever(
    sets: CodeSets, when: str, fires: bool
) -> None:
    """A woman born in 1986 with "domestic abuse victim in household" from 1994, when she was 8,
    is not prompted for it now: the code describes that household, then."""
    person = patient("p1", "1986-02-01")
    decision = run(sets, observation(ABUSE_VICTIM_IN_HOUSEHOLD, when), person=person)
    assert decision.enquiry is fires


# --- 5. Suppression by a recent enquiry ----------------------------------------------------


@pytest.mark.parametrize("outcome", [ENQUIRY_MADE, ENQUIRY_MADE_READ, ENQUIRY_DECLINED])
def test_a_recent_enquiry_suppresses_the_prompt(sets: CodeSets, outcome: tuple[str, str]) -> None:
    enquiry = observation(outcome, ago(20), rid="enq")
    decision = run(sets, condition(DEPRESSIVE_DISORDER, ago(60)), enquiry)
    assert decision.cards == ()
    assert decision.suppressed_by is not None and decision.suppressed_by.code == outcome[1]


def test_a_trigger_newer_than_the_enquiry_prompts_again(sets: CodeSets) -> None:
    decision = run(
        sets, observation(ENQUIRY_MADE, ago(60)), condition(DEPRESSIVE_DISORDER, ago(20))
    )
    assert decision.enquiry and decision.suppressed_by is None


def test_a_trigger_on_the_same_day_as_the_enquiry_is_not_newer(sets: CodeSets) -> None:
    decision = run(
        sets, observation(ENQUIRY_MADE, ago(20)), condition(DEPRESSIVE_DISORDER, ago(20))
    )
    assert not decision.enquiry and decision.suppressed_by is not None


@pytest.mark.parametrize(("days", "suppressed"), [(365, True), (366, False)])
def test_the_window_defaults_to_twelve_months(sets: CodeSets, days: int, suppressed: bool) -> None:
    decision = run(
        sets, observation(ENQUIRY_MADE, ago(days)), condition(DEPRESSIVE_DISORDER, ago(400))
    )
    assert (decision.suppressed_by is not None) is suppressed
    assert decision.enquiry is not suppressed


def test_the_window_is_a_setting(sets: CodeSets) -> None:
    settings = RuleSettings(enquiry_window=datetime.timedelta(days=30))
    decision = run(
        sets,
        observation(ENQUIRY_MADE, ago(45)),
        condition(DEPRESSIVE_DISORDER, ago(60)),
        settings=settings,
    )
    assert decision.enquiry


def test_enquiry_not_made_keeps_the_question_open(sets: CodeSets) -> None:
    decision = run(
        sets, observation(ENQUIRY_NOT_MADE, ago(10)), condition(DEPRESSIVE_DISORDER, ago(60))
    )
    assert decision.enquiry
    assert (
        decision.last_not_made is not None
        and decision.last_not_made.when == TODAY - datetime.timedelta(days=10)
    )


def test_an_enquiry_dated_in_the_future_does_not_suppress(sets: CodeSets) -> None:
    decision = run(
        sets, observation(ENQUIRY_MADE, ago(-30)), condition(DEPRESSIVE_DISORDER, ago(60))
    )
    assert decision.enquiry


def test_the_newest_enquiry_is_the_one_compared(sets: CodeSets) -> None:
    decision = run(
        sets,
        observation(ENQUIRY_MADE, ago(200), rid="old"),
        condition(DEPRESSIVE_DISORDER, ago(100)),
        observation(ENQUIRY_DECLINED, ago(50), rid="new"),
    )
    assert not decision.enquiry and decision.suppressed_by is not None
    assert decision.suppressed_by.code == ENQUIRY_DECLINED[1]


def test_nothing_to_suppress_reports_no_suppression(sets: CodeSets) -> None:
    assert run(sets, observation(ENQUIRY_MADE, ago(20))).suppressed_by is None


def test_a_recent_review_suppresses_the_known_abuse_card_until_something_new(
    sets: CodeSets,
) -> None:
    known = observation(VICTIM_OF_DOMESTIC_ABUSE, "2020-01-01", rid="k")
    reviewed = run(sets, known, observation(ENQUIRY_MADE, ago(30), rid="e"))
    assert reviewed.cards == () and reviewed.suppressed_by is not None
    news = run(
        sets,
        known,
        observation(ENQUIRY_MADE, ago(30), rid="e"),
        observation(VICTIM_OF_DOMESTIC_ABUSE, ago(5), rid="k2"),
    )
    assert news.cards == ("known-abuse",)


def test_a_disclosure_keeps_the_known_abuse_card_through_the_enquiry_window(
    sets: CodeSets,
) -> None:
    """The template records a disclosure as "enquiry made" and "victim" with one timestamp: the
    review-safety card must show at the next visits, the highest-risk period."""
    disclosure = [
        observation(ENQUIRY_MADE, ago(30), rid="asked"),
        observation(VICTIM_OF_DOMESTIC_ABUSE, ago(30), rid="victim"),
    ]
    decision = run(sets, *disclosure)
    assert decision.cards == ("known-abuse",) and decision.suppressed_by is None
    # A later review recorded as an enquiry holds it back again, until something new.
    reviewed = run(sets, *disclosure, observation(ENQUIRY_MADE, ago(10), rid="review"))
    assert reviewed.cards == () and reviewed.suppressed_by is not None


def test_suppression_never_hides_a_mappa_card(sets: CodeSets) -> None:
    decision = run(
        sets,
        RECENT_DEPRESSION,
        observation(ENQUIRY_MADE, ago(1)),
        household=Household((PARTNER_WITH_FLAG,)),
    )
    assert decision.cards == ("mappa",)


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


# --- Issue 11: the clinical review's points, as rules -------------------------------------

SUBJECT_OF_MARAC = ("http://snomed.info/sct", "758941000000108")
POLICE_OR_AT_RISK = ("http://snomed.info/sct", "707087005")  # at risk of domestic violence


def test_copies_of_an_entry_count_once(sets: CodeSets) -> None:
    """Point 6: the same code on the same day is one entry, newest first as ever."""
    copies = [condition(DEPRESSIVE_DISORDER, ago(30), rid=f"d{n}") for n in range(7)]
    decision = run(sets, *copies, condition(ANXIETY_DISORDER, ago(40), rid="a"))
    assert [t.category for t in decision.triggers] == ["depression", "anxiety"]
    other_day = run(sets, *copies, condition(DEPRESSIVE_DISORDER, ago(31), rid="d-other"))
    assert len(other_day.triggers) == 2


@pytest.mark.parametrize("code", [SUBJECT_OF_MARAC, POLICE_OR_AT_RISK])
def test_a_routine_enquiry_never_holds_back_known_high_risk_within_12_months(
    sets: CodeSets, code: tuple[str, str]
) -> None:
    """Point 10."""
    recent = run(sets, observation(code, ago(365), rid="k"), observation(ENQUIRY_MADE, ago(5)))
    assert recent.cards == ("known-abuse",) and recent.suppressed_by is None
    older = run(sets, observation(code, ago(366), rid="k"), observation(ENQUIRY_MADE, ago(5)))
    assert older.cards == () and older.suppressed_by is not None


@pytest.mark.parametrize(("days", "suppressed"), [(90, True), (91, False)])
def test_a_routine_enquiry_holds_back_other_known_abuse_for_90_days(
    sets: CodeSets, days: int, suppressed: bool
) -> None:
    """Point 10: made (nothing disclosed) or declined, the review card returns after 90 days."""
    for outcome in (ENQUIRY_MADE, ENQUIRY_DECLINED):
        decision = run(
            sets,
            observation(HISTORY_OF_DOMESTIC_VIOLENCE_READ, "2019-01-01", rid="k"),
            observation(outcome, ago(days)),
        )
        assert decision.known_abuse is not suppressed


def test_the_known_abuse_enquiry_window_is_a_setting(sets: CodeSets) -> None:
    settings = RuleSettings(known_abuse_enquiry_window=datetime.timedelta(days=30))
    decision = run(
        sets,
        observation(VICTIM_OF_DOMESTIC_ABUSE, "2019-01-01", rid="k"),
        observation(ENQUIRY_MADE, ago(45)),
        settings=settings,
    )
    assert decision.known_abuse


@pytest.mark.parametrize(("days", "prompted"), [(0, True), (90, True), (91, False)])
def test_not_safe_to_ask_is_a_reason_to_ask_for_90_days(
    sets: CodeSets, days: int, prompted: bool
) -> None:
    """Point 11: no other trigger needed; someone was present."""
    decision = run(sets, observation(ENQUIRY_NOT_MADE, ago(days)))
    assert decision.enquiry is prompted and decision.reopened is prompted
    assert decision.triggers == ()


def test_not_safe_to_ask_after_an_enquiry_reopens_it_but_not_before(sets: CodeSets) -> None:
    after = run(
        sets, observation(ENQUIRY_MADE, ago(50), rid="e"), observation(ENQUIRY_NOT_MADE, ago(10))
    )
    assert after.enquiry
    before = run(
        sets, observation(ENQUIRY_NOT_MADE, ago(50)), observation(ENQUIRY_MADE, ago(10), rid="e")
    )
    assert not before.enquiry and before.suppressed_by is not None


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
