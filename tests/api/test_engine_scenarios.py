"""The engine over real HTTP, scenario by scenario: the patient's own record.

Each scenario starts from a fresh copy of the seed case (tests/fixtures/records/seed-case.json:
a woman of 34 with recent anxiety and depression, her partner with an active MAPPA flag, her son
of 8), changes one thing, serves the result from a real FHIR server and prefetches it as a GP
system would. The service's clock is fixed at 26 November 2026, 10:00 in London. The household's
scenarios are in test_engine_household_scenarios.py.
"""

import copy
import datetime
from typing import Any

import pytest

from iris_prompt.template.extract import extract
from iris_prompt.template.form import response_from_form
from tests.api.engine_support import (
    NOW,
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
from tests.unit.template.conftest import DISCLOSURE

# --- dates: an entry's day is its day in England; old problems re-entered ---------------------


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
    assert kinds(seed_cards(service, seed)) == expected


def test_an_old_problem_recorded_again_on_migration_does_not_fire(service: LiveService) -> None:
    seed = seed_case()
    del seed["seed-visit"]  # the consultation's reason code would fire on its own
    for condition in ("seed-anxiety", "seed-depression"):
        seed[condition] |= {"onsetDateTime": "2013-04-01", "recordedDate": "2026-10-01"}
    assert kinds(seed_cards(service, seed)) == ["mappa"]
    # A recently resolved episode is recent, and the card says it is resolved.
    seed["seed-depression"]["abatementDateTime"] = "2026-08-01"
    seed["seed-depression"]["clinicalStatus"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "resolved",
            }
        ]
    }
    cards = seed_cards(service, seed)
    assert kinds(cards) == ["enquiry", "mappa"]
    assert "- Depressive disorder, 1 August 2026 (resolved)" in cards[0]["detail"]


# --- statuses, malformed or not ---------------------------------------------------------------


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_conditions_do_not_prompt(service: LiveService, verification: str) -> None:
    seed = seed_case()
    del seed["seed-visit"]
    for condition in ("seed-anxiety", "seed-depression"):
        seed[condition]["verificationStatus"]["coding"][0]["code"] = verification
    assert kinds(seed_cards(service, seed)) == ["mappa"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("final", ["enquiry", "mappa"]), ("cancelled", ["mappa"]), ("entered-in-error", ["mappa"])],
)
def test_a_cancelled_or_mistaken_observation_does_not_prompt(
    service: LiveService, status: str, expected: list[str]
) -> None:
    # The Read v2 anxiety Observation, made recent, is the record's only trigger.
    seed = seed_case()
    for other in ("seed-anxiety", "seed-depression", "seed-visit"):
        del seed[other]
    seed["seed-old-anxiety"] |= {"status": status, "effectiveDateTime": "2026-10-01"}
    assert kinds(seed_cards(service, seed)) == expected


def test_a_malformed_status_does_not_cost_the_prompt(service: LiveService) -> None:
    seed = seed_case()
    seed["seed-old-anxiety"]["status"] = ["final"]
    seed["seed-visit"]["status"] = {"code": "finished"}
    seed["seed-depression"]["verificationStatus"] = ["confirmed"]
    assert kinds(seed_cards(service, seed)) == ["enquiry", "mappa"]


# --- a disclosure recorded with the template keeps the known-abuse card -----------------------


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
    cards = seed_cards(service, seed)
    assert kinds(cards) == ["known-abuse", "mappa"]
    assert "- Victim of domestic abuse, 27 October 2026" in cards[0]["detail"]
    assert "1 child under 18 in the household (aged 8)" in cards[0]["detail"]  # Think Family


# --- abuse in the household: two years, under its own heading ---------------------------------


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
    cards = seed_cards(service, seed)
    assert kinds(cards) == expected
    if cards:
        detail = cards[0]["detail"]
        assert "NICE" not in detail.split("**How to ask.**")[0]
        assert "**Recorded in the record: domestic abuse in the household**" in detail
        assert "- Domestic abuse victim in household, 1 May 2026" in detail


# --- the patient is the one in context, from the patient prefetch -----------------------------


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
        ({"resourceType": "Observation", "id": "seed-mum"}, "not the Patient its query answers"),
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


# --- age: 16 today; the clinician of a child sees the MAPPA card; an unreadable birth date ----


def test_a_patient_turning_16_today_is_prompted(service: LiveService) -> None:
    seed = seed_case()
    seed["seed-mum"]["birthDate"] = "2010-11-26"
    assert kinds(seed_cards(service, seed)) == ["enquiry", "mappa"]
    seed["seed-mum"]["birthDate"] = "2010-11-27"  # 16 tomorrow
    assert kinds(seed_cards(service, seed)) == ["mappa"]


def test_the_clinician_of_a_child_sees_the_mappa_card(service: LiveService) -> None:
    """The seed case from the son's record: Child T was 8."""
    seed = seed_case()
    seed["seed-depression"]["subject"] = {"reference": "Patient/seed-son"}
    cards = seed_cards(service, seed, pid="seed-son")
    assert kinds(cards) == ["mappa"]
    assert cards[0]["indicator"] == "critical"
    assert "(a member of the patient's household) is subject to MAPPA" in cards[0]["detail"]
    for user in ("Patient/seed-son", "RelatedPerson/seed-partner-rp"):
        assert seed_cards(service, seed, pid="seed-son", user=user) == []


# 1992-05-14 in Arabic-Indic digits: not a FHIR date, whose digits are 0-9.
ARABIC_INDIC_BIRTH = "\u0661\u0669\u0669\u0662-\u0660\u0665-\u0661\u0664"


@pytest.mark.parametrize("birth", [19920514, "14/05/1992", ARABIC_INDIC_BIRTH, None])
def test_an_unreadable_birth_date_gives_no_enquiry_but_the_mappa_card_and_a_warning(
    service: LiveService, birth: object, caplog: pytest.LogCaptureFixture
) -> None:
    seed = seed_case()
    seed["seed-mum"]["birthDate"] = birth
    if birth is None:
        del seed["seed-mum"]["birthDate"]
    assert kinds(seed_cards(service, seed)) == ["mappa"]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("age unknown" in r.getMessage() for r in warnings)
    # Neither the patient's id nor her birth date, as the record had it or as sent. (Not "1992"
    # alone: a log line naming a process id such as 19921 holds it.)
    written = ["seed-", "1992-05-14", "19920514", "14/05/1992", ARABIC_INDIC_BIRTH]
    leaked = [
        (r.name, r.getMessage())
        for r in caplog.records
        if any(w in r.getMessage() for w in written)
    ]
    assert not leaked


# --- a deceased patient: no cards, and nothing of the household read ------------------------


@pytest.mark.parametrize(
    ("deceased", "expected"),
    [
        ({"deceasedBoolean": True}, []),
        ({"deceasedDateTime": "2026-11-20T08:15:00+00:00"}, []),
        ({"deceasedBoolean": False}, ["enquiry", "mappa"]),  # alive: the seed case's own cards
    ],
)
def test_a_deceased_patient_gets_no_cards_and_no_household_lookup(
    service: LiveService, deceased: dict[str, Any], expected: list[str]
) -> None:
    """Rule 2 (docs/rules.md): the seed case with the mother's Patient recorded as deceased.
    No card shows, and the FHIR server is asked for none of the household's Patients or Flags:
    the partner's MAPPA flag is never read for a record nobody will act on."""
    seed = seed_case()
    seed["seed-mum"].update(deceased)
    resources = list(seed.values())
    with fhir_serving(resources) as fhir:
        body = request_body(
            "seed-mum", prefetch=prefetch_for(resources, "seed-mum"), fhir_server=fhir.url
        )
        cards = cards_of(service.post(SERVICE_PATH, body))
        reads = [request.path for request in fhir.server.requests]
    assert kinds(cards) == expected
    household_reads = [path for path in reads if "/Patient" in path or "/Flag" in path]
    assert (household_reads == []) == (expected == [])
