"""Cards from decisions: what each card says, and what no card ever says."""

import dataclasses
import datetime

import pytest

from cds_hooks import Card
from iris_prompt.engine.cards import SUMMARIES, CardSettings, cards_for
from iris_prompt.engine.household import HouseholdMember
from iris_prompt.engine.record import CodedEntry
from iris_prompt.engine.risk_flags import MappaRisk
from iris_prompt.engine.rules import Decision

NOW = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=datetime.UTC)


def entry(term: str, days: int | None, set_: str = "trigger") -> CodedEntry:
    when = None if days is None else NOW.date() - datetime.timedelta(days=days)
    return CodedEntry(
        "http://snomed.info/sct", "35489007", term, set_, "depression", when, "Condition"
    )


def cards(decision: Decision, settings: CardSettings | None = None) -> list[Card]:
    return cards_for(
        decision,
        settings or CardSettings(),
        base_url="https://iris.example",
        hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        patient_ref="Patient/p1",
        now=NOW,
    )


def test_no_decision_no_cards() -> None:
    assert cards(Decision(household_checked=True)) == []


def test_summaries_are_short_and_discreet() -> None:
    for summary in SUMMARIES.values():
        assert len(summary) < 140
        assert "abuse" not in summary.lower() and "mappa" not in summary.lower()


def test_at_most_five_entries_are_listed_newest_first_as_given() -> None:
    triggers = tuple(entry(f"Term {n}", n) for n in range(7))
    (card,) = cards(Decision(enquiry=True, triggers=triggers, household_checked=True))
    assert card.detail is not None
    assert "- Term 4," in card.detail and "- Term 5," not in card.detail
    assert "- and 2 more" in card.detail


def test_undated_entries_say_so() -> None:
    (card,) = cards(
        Decision(known_abuse=True, known_abuse_entries=(entry("Victim", None, "known-abuse"),))
    )
    assert card.detail is not None and "- Victim, undated" in card.detail


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("resolved", "- Dep, 23 November 2026 (resolved)\n"),
        ("remission", "- Dep, 23 November 2026 (in remission)\n"),
        ("active", "- Dep, 23 November 2026\n"),
        ("<b>made up</b>", "- Dep, 23 November 2026\n"),  # not FHIR's: not shown
        (None, "- Dep, 23 November 2026\n"),
    ],
)
def test_a_conditions_clinical_status_is_shown_unless_active(
    status: str | None, shown: str
) -> None:
    trigger = dataclasses.replace(entry("Dep", 3), clinical_status=status)
    (card,) = cards(Decision(enquiry=True, triggers=(trigger,), household_checked=True))
    assert card.detail is not None and shown in card.detail


def test_an_enquiry_recorded_as_not_made_is_mentioned() -> None:
    not_made = CodedEntry(
        "http://snomed.info/sct",
        "887331000000105",
        "Routine enquiry about domestic abuse not made",
        "recording",
        "enquiry-not-made",
        datetime.date(2026, 11, 1),
        "Observation",
    )
    (card,) = cards(
        Decision(
            enquiry=True,
            triggers=(entry("Dep", 3),),
            last_not_made=not_made,
            household_checked=True,
        )
    )
    assert card.detail is not None
    assert (
        "An enquiry was recorded as not made on 1 November 2026: the question is still open."
        in card.detail
    )


@pytest.mark.parametrize(
    ("ages", "unknown", "words"),
    [
        ((8,), 0, "1 child under 18 in the household (aged 8). Consider a child"),
        ((3, 17), 0, "2 children under 18 in the household (aged 3, 17). Consider"),
        ((8,), 1, "(aged 8), and 1 household member of unknown age. Consider"),
        ((), 2, "**Think Family.** 2 household members of unknown age. Find out whether"),
    ],
)
def test_think_family(ages: tuple[int, ...], unknown: int, words: str) -> None:
    decision = Decision(
        enquiry=True,
        children_ages=ages,
        unknown_ages=unknown,
        household_checked=True,
        household_members=len(ages) + unknown,
    )
    (card,) = cards(decision)
    assert card.detail is not None and words in card.detail
    assert "child safeguarding referral" in card.detail


def test_no_children_no_think_family() -> None:
    (card,) = cards(Decision(enquiry=True, household_checked=True))
    assert card.detail is not None and "Think Family" not in card.detail


@pytest.mark.parametrize(
    ("members", "mappa", "words"),
    [
        (0, False, "**No household members are recorded** for this patient"),
        (1, False, "1 household member checked: no MAPPA flag in force."),
        (3, False, "3 household members checked: no MAPPA flag in force."),
        (2, True, "2 household members checked. A household risk flag is shown in a separate"),
    ],
)
def test_what_the_household_check_found_is_said(members: int, mappa: bool, words: str) -> None:
    flagged = (HouseholdMember("partner", 40, MappaRisk(())),) if mappa else ()
    decision = Decision(
        enquiry=True, mappa=flagged, household_checked=True, household_members=members
    )
    detail = cards(decision)[0].detail
    assert detail is not None and words in detail
    assert ("could not be checked" in detail) is (members == 0)


def test_an_unchecked_household_is_said_plainly() -> None:
    (card,) = cards(Decision(enquiry=True, household_checked=False))
    assert card.detail is not None and "**Household risk could not be checked**" in card.detail


@pytest.mark.parametrize("known_abuse", [False, True])
def test_a_household_too_large_to_check_says_so_and_whom_to_ask(known_abuse: bool) -> None:
    settings = CardSettings(safeguarding_lead="Dr Lead (0100 000 0000)")
    decision = Decision(enquiry=not known_abuse, known_abuse=known_abuse, household_too_large=True)
    (card,) = cards(decision, settings)
    assert card.detail is not None
    assert "**The household is too large to check**" in card.detail
    assert "ask Dr Lead (0100 000 0000) about any household risk" in card.detail
    assert "could not be checked" not in card.detail and "checked:" not in card.detail


def test_the_info_card_for_a_household_too_large_says_so_not_that_the_lookup_failed() -> None:
    """Rule 8 for a Group too large to be a household: the reason given is the true one."""
    decision = Decision(unchecked=True, household_too_large=True, age=40)
    (card,) = cards(decision)
    assert card.indicator == "info" and card.detail is not None
    assert "the recorded household is too large to check" in card.detail
    assert "failed or took too long" not in card.detail


def test_mappa_card_without_relationship_or_levels() -> None:
    member = HouseholdMember(None, 40, MappaRisk(()))
    (card,) = cards(Decision(mappa=(member,), household_checked=True))
    # Issue 11 point 16: unknown risk is critical, like unreadable risk.
    assert card.indicator == "critical"
    assert card.detail is not None
    assert "(a member of the patient's household) is subject to MAPPA" in card.detail
    assert "**The flag gives no risk levels**: until you know, treat the risk as high" in (
        card.detail
    )


def test_deployment_contacts_appear_where_they_belong() -> None:
    settings = CardSettings("Lead X", "Coordinator Y", "Advocate Z", "Helpline W")
    member = HouseholdMember("partner", 40, MappaRisk((("staff", "high"),)))
    enquiry, mappa = cards(
        Decision(enquiry=True, mappa=(member,), household_checked=True), settings
    )
    assert enquiry.detail is not None and mappa.detail is not None
    assert all(name in enquiry.detail for name in ("Lead X", "Advocate Z", "Helpline W"))
    assert "Coordinator Y" in mappa.detail and "Lead X" in mappa.detail
    assert mappa.indicator == "warning"  # high risk to staff alone is not critical


def test_each_card_gets_its_own_uuid_and_the_links_carry_it() -> None:
    member = HouseholdMember("partner", 40, MappaRisk(()))
    decision = Decision(enquiry=True, mappa=(member,), household_checked=True)
    enquiry, mappa = cards(decision, CardSettings(smart_launch=True))
    assert enquiry.uuid != mappa.uuid
    assert enquiry.links is not None and enquiry.uuid is not None
    assert enquiry.links[0].type == "smart"
    assert enquiry.uuid in (enquiry.links[0].app_context or "")


def test_without_a_smart_client_the_enquiry_card_links_the_page_and_its_rule_only() -> None:
    (enquiry,) = cards(Decision(enquiry=True, household_checked=True))
    assert enquiry.links is not None
    assert [(link.type, link.url) for link in enquiry.links] == [
        ("absolute", "https://iris.example/template"),
        ("absolute", "https://iris.example/rules#rule-3"),
    ]


@pytest.mark.parametrize("levels", [(), (("public", "low"),)])
def test_unreadable_risk_levels_are_said_and_the_card_is_critical(levels: tuple) -> None:
    member = HouseholdMember("partner", 40, MappaRisk(levels, unreadable=True))
    (card,) = cards(Decision(mappa=(member,), household_checked=True))
    assert card.indicator == "critical" and card.detail is not None
    some = "Some risk levels" if levels else "Risk levels"
    assert f"**{some} on the flag could not be read**: contact" in card.detail
    assert "gives no risk levels" not in card.detail
    assert ("- to the public: low" in card.detail) is bool(levels)


def test_abuse_in_the_household_is_listed_under_its_own_heading_not_as_nice_indicators() -> None:
    household = CodedEntry(
        "http://snomed.info/sct",
        "881081000000100",
        "Domestic abuse victim in household",
        "known-abuse",
        "abuse-in-household",
        datetime.date(2026, 5, 1),
        "Observation",
    )
    (only,) = cards(Decision(enquiry=True, triggers=(household,), household_checked=True))
    assert only.detail is not None
    assert "NICE" not in only.detail.split("**How to ask.**")[0]
    assert (
        "**Recorded in the record: domestic abuse in the household**" in only.detail
        and "- Domestic abuse victim in household, 1 May 2026" in only.detail
    )
    (both,) = cards(
        Decision(enquiry=True, triggers=(entry("Dep", 3), household), household_checked=True)
    )
    assert both.detail is not None
    nice, rest = both.detail.split("**Recorded in the record: domestic abuse in the household**")
    assert "NICE" in nice and "- Dep," in nice and "- Dep," not in rest
    assert "- Domestic abuse victim in household" in rest


def test_the_questions_are_ours_and_claim_no_validated_threshold() -> None:
    (card,) = cards(Decision(enquiry=True, household_checked=True))
    assert card.detail is not None
    assert "kicked" not in card.detail.lower()  # HARK's own words are not ours to reuse
    assert "positive screen" not in card.detail  # HARK's threshold is for HARK's questions


def test_mappa_is_described_as_what_it_is() -> None:
    member = HouseholdMember("partner", 40, MappaRisk((("children", "high"),)))
    (card,) = cards(Decision(mappa=(member,), household_checked=True))
    assert card.detail is not None
    assert "able to cause serious harm" not in card.detail
    assert "sexual and violent offenders" in card.detail


# --- Issue 11: what the cards say -------------------------------------------------------------


def test_an_enquiry_for_abuse_in_the_household_alone_has_no_empty_why_now() -> None:
    """Point 6."""
    household = (entry("Domestic abuse victim in household", 10, set_="known-abuse"),)
    (card,) = cards(Decision(enquiry=True, triggers=household, household_checked=True))
    assert card.detail is not None and "Why now" not in card.detail
    assert card.detail.startswith("**Recorded in the record: domestic abuse in the household**")


def test_not_safe_to_ask_alone_is_the_reason_given() -> None:
    """Point 11."""
    not_made = dataclasses.replace(entry("Routine enquiry not made", 20), set="recording")
    decision = Decision(enquiry=True, last_not_made=not_made, reopened=True, household_checked=True)
    (card,) = cards(decision)
    assert card.detail is not None
    assert card.detail.startswith("**Why now.** An enquiry was recorded as not made on 6 November")
    assert "itself a possible indicator" in card.detail


@pytest.mark.parametrize(
    ("presence", "relationship", "opening"),
    [
        ("member", "partner", "Someone in this household (the patient's partner)"),
        ("left", "partner", "A person who recently left the household (the patient's partner)"),
        ("left", None, "A person who recently left the household"),
        ("linked", "mother", "A person linked to this patient's record (their mother)"),
        ("linked", None, "A person linked to this patient's record"),
    ],
)
def test_the_mappa_card_says_where_the_person_stands(
    presence: str, relationship: str | None, opening: str
) -> None:
    """Points 15 and 17: a recent leaver is named so; a RelatedPerson is not assumed to live in."""
    member = HouseholdMember(relationship, 40, MappaRisk((("children", "high"),)), presence)
    (card,) = cards(Decision(mappa=(member,), household_checked=True, age=30))
    assert card.detail is not None and card.detail.startswith(f"**{opening} is subject to MAPPA**")


def test_the_household_line_names_only_the_people_checked() -> None:
    """Points 8, 15, 17: "no MAPPA flag in force" is said of the people checked, by standing."""
    decision = Decision(
        enquiry=True,
        triggers=(entry("Depressive disorder", 10),),
        household_checked=True,
        household_members=3,
        household_presence=("member", "linked", "left"),
        household_not_checked=("household-group",),
    )
    (card,) = cards(decision)
    assert card.detail is not None
    assert (
        "1 household member, 1 person who recently left the household and 1 person linked to "
        "this patient's record checked: no MAPPA flag in force."
    ) in card.detail
    assert "**Household risk could only partly be checked**: the household group" in card.detail


@pytest.mark.parametrize(
    ("age", "says", "template"),
    [
        (8, "**This patient is a child (aged 8).** Think Family", False),
        (17, "**This patient is a child (aged 17).** Think Family", False),
        (None, "**This patient's age is unknown.**", False),
        (18, "**The patient may be the known adult at risk.**", True),
    ],
)
def test_the_mappa_card_speaks_to_the_patient_child_or_adult(
    age: int | None, says: str, template: bool
) -> None:
    """Points 12 and 13: the template link for an adult only (point 9: no SMART client, so
    no smart link); the rule behind the card for everyone."""
    member = HouseholdMember("partner", 40, MappaRisk((("known-adult", "high"),)))
    (card,) = cards(Decision(mappa=(member,), household_checked=True, age=age))
    assert card.detail is not None and says in card.detail
    assert ("child safeguarding referral" in card.detail) is (age != 18)
    assert card.links is not None
    urls = [link.url for link in card.links if link.type == "absolute"]
    expected = ["https://iris.example/template"] if template else []
    assert urls == [*expected, "https://iris.example/rules#rule-6"]
    assert len(card.links) == len(urls)


def test_the_household_unchecked_card_is_discreet_info() -> None:
    """Point 14."""
    (card,) = cards(Decision(unchecked=True, age=8))
    assert card.summary == SUMMARIES["unchecked"] and card.indicator == "info"
    assert card.detail is not None
    assert "**The household safeguarding check could not be done**" in card.detail
    assert "This patient is a child (aged 8)" in card.detail
    assert "your practice safeguarding lead" in card.detail
