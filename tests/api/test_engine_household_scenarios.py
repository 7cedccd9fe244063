"""The engine over real HTTP, scenario by scenario: the household and its MAPPA flags.

As test_engine_scenarios.py: the seed case changed one fact at a time, served by a real FHIR
server, the service's clock fixed at 26 November 2026, 10:00 in London.
"""

import copy
from typing import Any

import pytest

from tests.api.engine_support import (
    SERVICE_PATH,
    cards_of,
    fhir_serving,
    kinds,
    prefetch_for,
    request_body,
    seed_cards,
    seed_case,
)
from tests.conftest import LiveService

Resources = dict[str, dict[str, Any]]


# --- flags and memberships in force: period ends at their precision ---------------------------


@pytest.mark.parametrize(
    ("bound", "value", "shown"),
    [
        ("end", "2026", True),  # all of 2026
        ("end", "2026-11", True),  # all of November 2026
        ("end", "2026-11-26", True),  # the last day is today
        ("end", "2026-11-26T10:30:00Z", True),  # later this morning
        ("end", "2025", False),
        ("end", "2026-10", False),
        ("end", "2026-11-25", False),
        ("end", "2026-11-26T00:01:00Z", False),  # ten hours ago
        ("start", "2026-11", True),
        ("start", "2026-11-26T09:00:00Z", True),
        ("start", "2026-11-26T10:30:00Z", False),  # not yet started
        ("start", "2026-12", False),
    ],
)
def test_a_flag_is_in_force_within_its_period_at_its_precision(
    service: LiveService, bound: str, value: str, shown: bool
) -> None:
    seed = seed_case()
    seed["seed-partner-mappa"]["period"][bound] = value
    assert kinds(seed_cards(service, seed)) == (["enquiry", "mappa"] if shown else ["enquiry"])


@pytest.mark.parametrize(
    ("end", "standing"),
    [
        ("2026", "member"),
        ("2026-11", "member"),
        ("2026-10", "left"),  # left last month
        ("2025-11", "left"),  # the whole of November 2025: within 12 months of 26 November 2026
        ("2025-10", None),  # over 12 months ago: no longer checked
    ],
)
def test_a_membership_lasts_to_its_periods_precision_and_a_recent_leaver_is_checked(
    service: LiveService, end: str, standing: str | None
) -> None:
    """Issue 11 point 15: separation is the highest-risk period, so a member who left within
    the last 12 months is still checked, and the card says so."""
    seed = seed_case()
    seed["seed-household"]["member"][1]["period"] = {"start": "2019-01-01", "end": end}
    seed["seed-partner-rp"]["identifier"] = []  # the Group alone says who lives here
    cards = seed_cards(service, seed)
    assert kinds(cards) == (["enquiry", "mappa"] if standing else ["enquiry"])
    if standing == "left":
        assert cards[1]["detail"].startswith(
            "**A person who recently left the household is subject to MAPPA**"
        )
        assert "Separation is the time of highest risk." in cards[1]["detail"]
        assert (
            "1 household member and 1 person who recently left the household checked."
            in cards[0]["detail"]
        )
    elif standing == "member":
        assert "Someone in this household" in cards[1]["detail"]
    else:
        # Never "no MAPPA flag in force" about someone not checked: the son alone was.
        assert "1 household member checked: no MAPPA flag in force." in cards[0]["detail"]


@pytest.mark.parametrize("status", ["inactive", "entered-in-error"])
def test_a_flag_no_longer_active_shows_nothing(service: LiveService, status: str) -> None:
    seed = seed_case()
    seed["seed-partner-mappa"]["status"] = status
    (card,) = seed_cards(service, seed)
    assert "2 household members checked: no MAPPA flag in force." in card["detail"]


# --- malformed or unreadable flags ------------------------------------------------------------


def test_a_malformed_flag_on_one_member_costs_only_that_flag(service: LiveService) -> None:
    seed = seed_case()
    other = copy.deepcopy(seed["seed-partner-mappa"]) | {
        "id": "son-flag",
        "subject": {"reference": "Patient/seed-son"},
        "status": ["active"],
        "extension": 5,
    }
    seed["son-flag"] = other
    cards = seed_cards(service, seed)
    assert kinds(cards) == ["enquiry", "mappa"]
    assert "could not be checked" not in cards[0]["detail"]
    assert "(the patient's partner) is subject to MAPPA" in cards[1]["detail"]


@pytest.mark.parametrize(
    "level",
    [
        {"url": "level", "valueCoding": {"code": "VERY-HIGH"}},
        {"url": "level", "valueCode": "very-high"},
        {"url": "level", "valueString": "very high"},
    ],
)
def test_an_unreadable_risk_level_is_said_and_critical(
    service: LiveService, level: dict[str, Any]
) -> None:
    seed = seed_case()
    known_adult = seed["seed-partner-mappa"]["extension"][0]
    assert known_adult["extension"][0]["valueCoding"]["code"] == "known-adult"
    known_adult["extension"][1] = level
    mappa = seed_cards(service, seed)[1]
    assert mappa["indicator"] == "critical"
    assert "- to children: medium" in mappa["detail"]
    assert "**Some risk levels on the flag could not be read**" in mappa["detail"]
    assert "gives no risk levels" not in mappa["detail"]


# --- what the household check says ------------------------------------------------------------


def no_group(seed: Resources) -> None:
    del seed["seed-household"]


def group_of_animals(seed: Resources) -> None:
    seed["seed-household"]["type"] = "animal"


def group_of_the_patient_alone(seed: Resources) -> None:
    seed["seed-household"]["member"] = seed["seed-household"]["member"][:1]


@pytest.mark.parametrize("change", [no_group, group_of_animals, group_of_the_patient_alone])
def test_no_household_recorded_is_said_never_as_checked(service: LiveService, change: Any) -> None:
    seed = seed_case()
    change(seed)
    del seed["seed-partner-rp"]
    (card,) = seed_cards(service, seed)
    assert "**No household members are recorded**" in card["detail"]
    assert "could not be checked" in card["detail"]
    assert "checked: no MAPPA flag" not in card["detail"] and "none found" not in card["detail"]


@pytest.mark.parametrize("household", [None, {"resourceType": "Bundle", "type": "searchset"}])
def test_a_null_or_empty_household_prefetch_is_not_a_checked_household(
    service: LiveService, household: dict[str, Any] | None
) -> None:
    seed = seed_case()
    listed = list(seed.values())
    prefetch = prefetch_for(listed, "seed-mum")
    prefetch["household"] = household
    prefetch["relatedPersons"] = None
    with fhir_serving(listed) as fhir:
        body = request_body("seed-mum", prefetch=prefetch, fhir_server=fhir.url)
        (card,) = cards_of(service.post(SERVICE_PATH, body))
    assert "**No household members are recorded**" in card["detail"]


def test_members_checked_are_counted(service: LiveService) -> None:
    seed = seed_case()
    seed["seed-partner-mappa"]["status"] = "inactive"
    (card,) = seed_cards(service, seed)
    assert "2 household members checked: no MAPPA flag in force." in card["detail"]


def test_members_of_unknown_age_are_counted_in_think_family(service: LiveService) -> None:
    seed = seed_case()
    del seed["seed-partner"]["birthDate"]  # and the lodger's Patient cannot be read (404)
    seed["seed-household"]["member"].append({"entity": {"reference": "Patient/lodger"}})
    cards = seed_cards(service, seed)
    assert kinds(cards) == ["enquiry", "mappa"]
    for card in cards:
        assert (
            "1 child under 18 in the household (aged 8), and 2 household members of unknown age"
            in card["detail"]
        )


# --- who is in the household ------------------------------------------------------------------


def test_an_inactive_group_member_is_not_in_the_household(service: LiveService) -> None:
    seed = seed_case()
    seed["seed-household"]["member"][1]["inactive"] = True  # the partner has left
    seed["seed-partner-rp"]["identifier"] = []
    (card,) = seed_cards(service, seed)
    assert "1 household member checked: no MAPPA flag in force." in card["detail"]


def test_a_related_person_alone_resolves_the_household(service: LiveService) -> None:
    """No Group: the partner is found by the NHS number on the patient's RelatedPerson."""
    seed = seed_case()
    del seed["seed-household"]
    cards = seed_cards(service, seed)
    assert kinds(cards) == ["enquiry", "mappa"]
    # Co-residence is not assumed (issue 11 point 17): a relationship, not a shared home.
    assert cards[1]["detail"].startswith(
        "**A person linked to this patient's record (their partner) is subject to MAPPA**"
    )
    assert "1 person linked to this patient's record checked." in cards[0]["detail"]


@pytest.mark.parametrize(
    ("end", "opening"),
    [
        ("2026", "A person linked to this patient's record (their partner)"),
        ("2026-03-31", "A person who recently left the household (the patient's partner)"),
        ("2025-06-30", None),
    ],
)
def test_a_former_partner_is_checked_for_12_months_after_the_relationship_ended(
    service: LiveService, end: str, opening: str | None
) -> None:
    seed = seed_case()
    del seed["seed-household"]
    seed["seed-partner-rp"]["period"] = {"start": "2019-01-01", "end": end}
    cards = seed_cards(service, seed)
    assert kinds(cards) == (["enquiry", "mappa"] if opening else ["enquiry"])
    if opening:
        assert cards[1]["detail"].startswith(f"**{opening} is subject to MAPPA**")
