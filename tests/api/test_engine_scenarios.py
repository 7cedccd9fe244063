"""The engine over real HTTP, scenario by scenario: the seed case changed one fact at a time.

Each scenario starts from a fresh copy of the seed case (tests/fixtures/records/seed-case.json:
a woman of 34 with recent anxiety and depression, her partner with an active MAPPA flag, her son
of 8), changes one thing, serves the result from a real FHIR server and prefetches it as a GP
system would. The service's clock is fixed at 26 November 2026, 10:00 in London.
"""

import copy
import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from iris_prompt.recording import extract
from iris_prompt.template_api import response_from_form
from tests.api.engine_support import (
    NOW,
    SERVICE_PATH,
    call_with,
    cards_of,
    engine_service,
    fhir_serving,
    kinds,
    prefetch_for,
    request_body,
    seed_case,
)
from tests.conftest import LiveService
from tests.support.tokens import SigningKey
from tests.unit.template.conftest import DISCLOSURE

Resources = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def service(es384_key: SigningKey) -> Iterator[LiveService]:
    with engine_service(es384_key) as running:
        yield running


def cards_for(
    service: LiveService, resources: Resources, pid: str = "seed-mum", **kw: Any
) -> list[dict[str, Any]]:
    """The cards for the (changed) seed case, its household served by a real FHIR server."""
    listed = list(resources.values())
    with fhir_serving(listed) as fhir:
        return cards_of(call_with(service, listed, fhir, pid=pid, **kw))


# --- period ends at their precision, and instants (B3, S10) -----------------------------------


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
    assert kinds(cards_for(service, seed)) == (["enquiry", "mappa"] if shown else ["enquiry"])


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        # 23:30 UTC on 1 June is 00:30 on 2 June in England (British Summer Time): the
        # depression coded on 2 June is not newer than the enquiry, which holds the card back.
        ("2026-06-01T23:30:00Z", ["mappa"]),
        ("2026-06-01T22:30:00Z", ["enquiry", "mappa"]),  # 23:30 on 1 June in England
    ],
)
def test_an_enquirys_day_is_its_day_in_england(
    service: LiveService, asked: str, expected: list[str]
) -> None:
    seed = seed_case()
    for older in ("seed-anxiety", "seed-visit"):
        del seed[older]
    seed["seed-depression"]["recordedDate"] = "2026-06-02"
    seed["asked"] = copy.deepcopy(seed["seed-old-anxiety"]) | {
        "id": "asked",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "700410005"}]},
        "effectiveDateTime": asked,
    }
    assert kinds(cards_for(service, seed)) == expected


@pytest.mark.parametrize(("end", "member"), [("2026", True), ("2026-11", True), ("2026-10", False)])
def test_a_group_membership_lasts_to_the_end_of_its_periods_precision(
    service: LiveService, end: str, member: bool
) -> None:
    seed = seed_case()
    seed["seed-household"]["member"][1]["period"] = {"start": "2019-01-01", "end": end}
    seed["seed-partner-rp"]["identifier"] = []  # the Group alone says who lives here
    assert kinds(cards_for(service, seed)) == (["enquiry", "mappa"] if member else ["enquiry"])


# --- malformed fields cost only themselves (S1) ------------------------------------------------


def test_a_malformed_status_does_not_cost_the_prompt(service: LiveService) -> None:
    seed = seed_case()
    seed["seed-old-anxiety"]["status"] = ["final"]
    seed["seed-visit"]["status"] = {"code": "finished"}
    seed["seed-depression"]["verificationStatus"] = ["confirmed"]
    assert kinds(cards_for(service, seed)) == ["enquiry", "mappa"]


def test_a_malformed_flag_on_one_member_costs_only_that_flag(service: LiveService) -> None:
    seed = seed_case()
    other = copy.deepcopy(seed["seed-partner-mappa"]) | {
        "id": "son-flag",
        "subject": {"reference": "Patient/seed-son"},
        "status": ["active"],
        "extension": 5,
    }
    seed["son-flag"] = other
    cards = cards_for(service, seed)
    assert kinds(cards) == ["enquiry", "mappa"]
    assert "could not be checked" not in cards[0]["detail"]
    assert "(the patient's partner) is subject to MAPPA" in cards[1]["detail"]


# --- unreadable risk levels (S2) -----------------------------------------------------------------


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
    mappa = cards_for(service, seed)[1]
    assert mappa["indicator"] == "critical"
    assert "- to children: medium" in mappa["detail"]
    assert "**Some risk levels on the flag could not be read**" in mappa["detail"]
    assert "gives no risk levels" not in mappa["detail"]


# --- a disclosure recorded with the template keeps the known-abuse card (B1) ---------------------


def disclosure_entries(days_ago: int) -> list[dict[str, Any]]:
    """What the recording template files for a disclosure of current physical abuse."""
    when = NOW - datetime.timedelta(days=days_ago)
    response = response_from_form(DISCLOSURE, authored=when) | {
        "subject": {"reference": "Patient/seed-mum"}
    }
    entries = [e["resource"] for e in extract(response, when=when)["entry"]][1:]
    return [r | {"id": f"disclosure-{n}"} for n, r in enumerate(entries)]


def test_after_a_disclosure_the_known_abuse_card_shows_not_silence(service: LiveService) -> None:
    seed = seed_case()
    entries = disclosure_entries(30)
    codes = [r["code"]["coding"][0]["code"] for r in entries]
    assert "700410005" in codes and "879911000000102" in codes  # enquiry made; victim
    assert len({r["effectiveDateTime"] for r in entries}) == 1  # one timestamp
    seed |= {r["id"]: r for r in entries}
    cards = cards_for(service, seed)
    assert kinds(cards) == ["known-abuse", "mappa"]
    assert "- Victim of domestic abuse, 27 October 2026" in cards[0]["detail"]


# --- an old problem re-entered does not fire again (S3) ---------------------------------------


def test_an_old_problem_recorded_again_on_migration_does_not_fire(service: LiveService) -> None:
    seed = seed_case()
    del seed["seed-visit"]  # the consultation's reason code would fire on its own
    for condition in ("seed-anxiety", "seed-depression"):
        seed[condition] |= {"onsetDateTime": "2013-04-01", "recordedDate": "2026-10-01"}
    assert kinds(cards_for(service, seed)) == ["mappa"]
    # A recently resolved episode is recent.
    seed["seed-depression"]["abatementDateTime"] = "2026-08-01"
    assert kinds(cards_for(service, seed)) == ["enquiry", "mappa"]


# --- abuse in the household: two years, under its own heading (S4) -----------------------------


@pytest.mark.parametrize(("when", "expected"), [("1994-06-01", []), ("2026-05-01", ["enquiry"])])
def test_abuse_in_the_household_prompts_for_two_years_under_its_own_heading(
    service: LiveService, when: str, expected: list[str]
) -> None:
    seed = seed_case()
    for nice_indicator in ("seed-anxiety", "seed-depression", "seed-visit", "seed-flag"):
        seed.pop(nice_indicator, None)
    seed["seed-partner-mappa"]["status"] = "inactive"
    seed["seed-mum"]["birthDate"] = "1986-02-01"
    seed["in-household"] = copy.deepcopy(seed["seed-old-anxiety"]) | {
        "id": "in-household",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "881081000000100"}]},
        "effectiveDateTime": when,
    }
    cards = cards_for(service, seed)
    assert kinds(cards) == expected
    if cards:
        detail = cards[0]["detail"]
        assert "NICE" not in detail.split("**How to ask.**")[0]
        assert "**Recorded in the record: domestic abuse in the household**" in detail
        assert "- Domestic abuse victim in household, 1 May 2026" in detail


# --- what the household check says (B2, S11) ----------------------------------------------------


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
    (card,) = cards_for(service, seed)
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
    (card,) = cards_for(service, seed)
    assert "2 household members checked: no MAPPA flag in force." in card["detail"]


def test_members_of_unknown_age_are_counted_in_think_family(service: LiveService) -> None:
    seed = seed_case()
    del seed["seed-partner"]["birthDate"]  # and the lodger's Patient cannot be read (404)
    seed["seed-household"]["member"].append({"entity": {"reference": "Patient/lodger"}})
    cards = cards_for(service, seed)
    assert kinds(cards) == ["enquiry", "mappa"]
    for card in cards:
        assert (
            "1 child under 18 in the household (aged 8), and 2 household members of unknown age"
            in card["detail"]
        )


# --- the patient is the one in context, from prefetch["patient"] (B4, S5) -----------------------


def test_a_patient_included_in_the_household_bundle_is_not_taken_for_the_patient(
    service: LiveService,
) -> None:
    """A Group search with the members' Patients included (`_include`), sent before the patient:
    the 14-year-old is not the patient, and the son's Condition is not the patient's."""
    seed = seed_case()
    seed["seed-son"]["birthDate"] = "2012-03-01"  # 14
    listed = list(seed.values())
    prefetch = prefetch_for(listed, "seed-mum")
    sons_condition = copy.deepcopy(seed["seed-depression"]) | {
        "id": "son-dep",
        "subject": {"reference": "Patient/seed-son"},
    }
    prefetch["household"]["entry"] += [{"resource": seed["seed-son"]}, {"resource": sons_condition}]
    prefetch = {"household": prefetch.pop("household")} | prefetch  # sent first
    with fhir_serving(listed) as fhir:
        body = request_body("seed-mum", prefetch=prefetch, fhir_server=fhir.url)
        cards = cards_of(service.post(SERVICE_PATH, body))
    assert kinds(cards) == ["enquiry", "mappa"]
    assert "aged 14" in cards[0]["detail"]
    # Only the patient's own entries are listed (the son's depression is dated as hers).
    assert cards[0]["detail"].count("- Depressive disorder, 10 June 2026") == 1


def outcome_of(response: Any) -> list[str]:
    assert response.headers["content-type"] == "application/fhir+json"
    return [issue["diagnostics"] for issue in response.json()["issue"]]


@pytest.mark.parametrize(
    ("patient", "why"),
    [
        (None, "no Patient resource"),
        ({"resourceType": "Patient", "id": "seed-son", "birthDate": "2018-03-01"}, "not the"),
        ({"resourceType": "Patient", "birthDate": "1992-05-14"}, "not the"),
        ({"resourceType": "Observation", "id": "seed-mum"}, "no Patient resource"),
    ],
)
def test_the_patient_resource_must_be_the_patient_in_context(
    service: LiveService, patient: dict[str, Any] | None, why: str
) -> None:
    listed = list(seed_case().values())
    prefetch = prefetch_for(listed, "seed-mum") | {"patient": patient}
    with fhir_serving(listed) as fhir:
        body = request_body("seed-mum", prefetch=prefetch, fhir_server=fhir.url)
        response = service.post(SERVICE_PATH, body)
    assert response.status_code == 412
    (problem,) = outcome_of(response)
    assert problem.startswith("prefetch 'patient'") and why in problem
    assert "seed-" not in response.text  # no identifier is echoed


def test_a_patient_the_fhir_server_does_not_have_is_412(service: LiveService) -> None:
    seed = seed_case()
    listed = list(seed.values())
    prefetch = prefetch_for(listed, "seed-mum")
    del prefetch["patient"]  # fetched, and the server answers 404
    del seed["seed-mum"]
    with fhir_serving(list(seed.values())) as fhir:
        body = request_body("seed-mum", prefetch=prefetch, fhir_server=fhir.url)
        response = service.post(SERVICE_PATH, body)
    assert response.status_code == 412
    assert outcome_of(response)[0].startswith("prefetch 'patient'")


# --- age: 16 today; a child's clinician sees the MAPPA card; an unreadable age (S5, S7, S9) ------


def test_a_patient_turning_16_today_is_prompted(service: LiveService) -> None:
    seed = seed_case()
    seed["seed-mum"]["birthDate"] = "2010-11-26"
    assert kinds(cards_for(service, seed)) == ["enquiry", "mappa"]
    seed["seed-mum"]["birthDate"] = "2010-11-27"  # 16 tomorrow
    assert kinds(cards_for(service, seed)) == ["mappa"]


def test_the_clinician_of_a_child_sees_the_mappa_card(service: LiveService) -> None:
    """The seed case from the son's record: Child T was 8."""
    seed = seed_case()
    seed["seed-depression"]["subject"] = {"reference": "Patient/seed-son"}
    cards = cards_for(service, seed, pid="seed-son")
    assert kinds(cards) == ["mappa"]
    assert cards[0]["indicator"] == "critical"
    assert "(a member of the patient's household) is subject to MAPPA" in cards[0]["detail"]
    for user in ("Patient/seed-son", "RelatedPerson/seed-partner-rp"):
        assert cards_for(service, seed, pid="seed-son", user=user) == []


@pytest.mark.parametrize("birth", [19920514, "14/05/1992", None])
def test_an_unreadable_birth_date_gives_no_enquiry_but_the_mappa_card_and_a_warning(
    service: LiveService, birth: object, caplog: pytest.LogCaptureFixture
) -> None:
    seed = seed_case()
    seed["seed-mum"]["birthDate"] = birth
    if birth is None:
        del seed["seed-mum"]["birthDate"]
    assert kinds(cards_for(service, seed)) == ["mappa"]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("age unknown" in r.getMessage() for r in warnings)
    assert not any("seed-" in r.getMessage() or "1992" in r.getMessage() for r in caplog.records)


# --- statuses and household resolution (S9) ---------------------------------------------------


def test_refuted_conditions_do_not_prompt(service: LiveService) -> None:
    seed = seed_case()
    del seed["seed-visit"]
    for condition in ("seed-anxiety", "seed-depression"):
        seed[condition]["verificationStatus"]["coding"][0]["code"] = "refuted"
    assert kinds(cards_for(service, seed)) == ["mappa"]


@pytest.mark.parametrize("status", ["inactive", "entered-in-error"])
def test_a_flag_no_longer_active_shows_nothing(service: LiveService, status: str) -> None:
    seed = seed_case()
    seed["seed-partner-mappa"]["status"] = status
    (card,) = cards_for(service, seed)
    assert "2 household members checked: no MAPPA flag in force." in card["detail"]


def test_an_inactive_group_member_is_not_in_the_household(service: LiveService) -> None:
    seed = seed_case()
    seed["seed-household"]["member"][1]["inactive"] = True  # the partner has left
    seed["seed-partner-rp"]["identifier"] = []
    (card,) = cards_for(service, seed)
    assert "1 household member checked: no MAPPA flag in force." in card["detail"]


def test_a_related_person_alone_resolves_the_household(service: LiveService) -> None:
    """No Group: the partner is found by the NHS number on the patient's RelatedPerson."""
    seed = seed_case()
    del seed["seed-household"]
    cards = cards_for(service, seed)
    assert kinds(cards) == ["enquiry", "mappa"]
    assert "(the patient's partner) is subject to MAPPA" in cards[1]["detail"]
    assert "1 household member checked." in cards[0]["detail"]


@pytest.mark.parametrize(("end", "member"), [("2026", True), ("2025-06-30", False)])
def test_a_former_partner_is_no_household_member(
    service: LiveService, end: str, member: bool
) -> None:
    seed = seed_case()
    del seed["seed-household"]
    seed["seed-partner-rp"]["period"] = {"start": "2019-01-01", "end": end}
    assert kinds(cards_for(service, seed)) == (["enquiry", "mappa"] if member else ["enquiry"])
