"""The rules of `docs/rules.md` on known abuse and recorded enquiries, one test (or table) per
rule: `decide` over plain data. Rule 4 (known abuse shows the known-abuse card) and rule 5
(a recent enquiry holds a card back; known high risk, other known abuse and "not safe to ask"
each by their own window)."""

import datetime

import pytest

from iris_prompt.codesets.model import CodeSets
from iris_prompt.engine.household import Household
from iris_prompt.engine.rules import RuleSettings
from tests.support.records import (
    ABUSE_VICTIM_IN_HOUSEHOLD,
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
from tests.unit.engine.rules_support import PARTNER_WITH_FLAG, RECENT_DEPRESSION, TODAY, ago, run

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


# --- The clinical review's points 10 and 11 ----------------------------------------------

SUBJECT_OF_MARAC = ("http://snomed.info/sct", "758941000000108")
POLICE_OR_AT_RISK = ("http://snomed.info/sct", "707087005")  # at risk of domestic violence


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
