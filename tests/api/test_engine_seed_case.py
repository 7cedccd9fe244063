"""The prompt engine over real HTTP, the seed case end to end: both cards as the clinician
sees them, the one-click suggestions, a patient-facing app, the encounter-start hook, no
prefetch, and one deadline for the whole household check.

The service runs in process with caller JWTs checked (`service`, and `tight` with the product's
household budget, from tests/api/conftest.py); household members' Patients and Flags come
from a real FHIR server (tests/support/fhir_server.py) with the caller's token. Records are
hand-made, UK-coded (SNOMED CT and Read v2) and fictional: tests/fixtures/records.
"""

import logging
from collections.abc import Iterator

import orjson
import pytest
from fhir.resources.R4B.observation import Observation

from tests.api.engine_support import (
    SEED_IDENTIFIERS,
    Fhir,
    call,
    cards_of,
    fhir_with,
    kinds,
    patient_id_of,
    prefetch_for,
    record,
    request_body,
)
from tests.api.engine_support import SERVICE_PATH as SERVICE
from tests.conftest import ACCESS_TOKEN, HOOK_INSTANCE, LiveService

pytestmark = pytest.mark.slow


@pytest.fixture
def seed_fhir() -> Iterator[Fhir]:
    with fhir_with("seed-case") as fhir:
        yield fhir


# --- the seed case -------------------------------------------------------------------------


def test_seed_case_end_to_end(service: LiveService, seed_fhir: Fhir) -> None:
    cards = cards_of(call(service, "seed-case", seed_fhir))
    assert kinds(cards) == ["enquiry", "mappa"]
    enquiry, mappa = cards

    # The enquiry card: why now (sourced terms and dates), how to ask, Think Family, recording.
    assert enquiry["indicator"] == "info"
    detail = enquiry["detail"]
    assert "- Anxiety disorder, 15 September 2026" in detail  # the consultation's reason code
    assert "- Depressive disorder, 10 June 2026" in detail
    assert "- Anxiety disorder, 2 October 2025" in detail
    assert "Anxiety state unspecified" not in detail  # 2019: outside the 2-year window
    assert "on their own" in detail and "interpret" in detail
    assert "DASH" in detail and "MARAC" in detail and "the Example IRIS advocate educator" in detail
    assert "1 child under 18 in the household (aged 8)" in detail
    assert "child safeguarding referral" in detail
    assert enquiry["source"]["topic"]["code"] == "700410005"
    assert enquiry["source"]["label"] == "IRIS prompt (NICE QS116 indicators)"
    assert enquiry["source"]["url"] == "https://www.nice.org.uk/guidance/qs116"
    assert [r["code"] for r in enquiry["overrideReasons"]] == [
        "patient-not-alone",
        "not-appropriate-now",
        "already-discussed",
    ]
    # No SMART client configured: the page only, opened in a browser (no greyed-out smart link),
    # and the rule that prompted it.
    assert [(link["type"], link["url"]) for link in enquiry["links"]] == [
        ("absolute", service.base_url + "/template"),
        ("absolute", service.base_url + "/rules#rule-3"),
    ]

    # The MAPPA card: critical (very high risk to a known adult), by relationship, no offences.
    assert mappa["indicator"] == "critical"
    text = mappa["detail"]
    assert "(the patient's partner) is subject to MAPPA" in text
    assert "- to a known adult: very high" in text and "- to children: medium" in text
    assert "Do not raise this in that person's presence" in text
    assert "the Example MAPPA co-ordinator (0100 000 0001)" in text
    assert "aged 8" in text
    assert mappa["source"]["topic"]["code"] == "495021000000105"
    assert mappa["source"]["label"] == "Shared MAPPA risk flag"
    assert mappa["source"]["url"].startswith("https://www.gov.uk/government/publications/")
    # An adult patient may be the known adult at risk: the template link, never a suggestion.
    assert "suggestions" not in mappa
    assert [(link["type"], link["url"]) for link in mappa["links"]] == [
        ("absolute", service.base_url + "/template"),
        ("absolute", service.base_url + "/rules#rule-6"),
    ]

    body = orjson.dumps(cards).decode()
    for identifying in SEED_IDENTIFIERS:
        assert identifying not in body, identifying
    for card in cards:
        assert len(card["summary"]) < 140
        assert "abuse" not in card["summary"].lower() and "MAPPA" not in card["summary"]

    # Household members were looked up with the caller's token, on the caller's server.
    asked = [(r.path, r.query) for r in seed_fhir.server.requests]
    assert ("/Flag", "subject=Patient/seed-partner") in asked
    assert ("/Patient/seed-son", "") in asked
    assert all(r.authorization == f"Bearer {ACCESS_TOKEN}" for r in seed_fhir.server.requests)


def test_seed_case_suggestions_record_labelled_enquiry_outcomes(
    service: LiveService, seed_fhir: Fhir
) -> None:
    enquiry = cards_of(call(service, "seed-case", seed_fhir))[0]
    assert enquiry["selectionBehavior"] == "at-most-one"
    labels = [s["label"] for s in enquiry["suggestions"]]
    assert labels == [
        "Asked when alone: nothing disclosed",
        "Asked: patient declined to answer",
        "Not safe to ask now: enquiry not made",
    ]
    codes = []
    for suggestion in enquiry["suggestions"]:
        for action in suggestion["actions"]:
            resource = action["resource"]
            Observation.model_validate(resource)
            assert resource["subject"] == {"reference": "Patient/seed-mum"}
            security = {
                (s["system"].rsplit("/", 1)[-1], s["code"]) for s in resource["meta"]["security"]
            }
            assert security == {("v3-Confidentiality", "R"), ("v3-ActCode", "SDV")}
            codes.append(resource["code"]["coding"][0]["code"])
    assert codes == ["700410005", "700411009", "887331000000105"]


@pytest.mark.parametrize("user", ["Patient/seed-mum", "RelatedPerson/seed-partner-rp"])
def test_seed_case_for_a_patient_facing_app_gets_no_cards_and_looks_nothing_up(
    service: LiveService, seed_fhir: Fhir, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = call(service, "seed-case", seed_fhir, user=user)
    assert response.status_code == 200 and response.content == b'{"cards":[]}'
    assert not any(r.path == "/Flag" for r in seed_fhir.server.requests)
    refusals = [r.getMessage() for r in caplog.records if "no cards:" in r.getMessage()]
    assert refusals == [f"no cards: patient-facing caller hookInstance={HOOK_INSTANCE}"]
    assert "seed-mum" not in "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("user", ["Patient/seed-mum", "RelatedPerson/seed-partner-rp"])
def test_a_patient_facing_app_causes_no_read_of_the_record_at_all(
    service: LiveService, seed_fhir: Fhir, user: str
) -> None:
    """Nothing prefetched and a FHIR server offered: not one request is made to it."""
    response = call(service, "seed-case", seed_fhir, user=user, prefetched=False)
    assert response.status_code == 200 and response.content == b'{"cards":[]}'
    assert seed_fhir.server.requests == []


@pytest.mark.parametrize(
    ("budget", "delay", "checked"),
    [
        pytest.param("service", 0.0, True, id="in-time"),
        pytest.param("tight", 0.2, False, id="overrun"),
    ],
)
def test_one_deadline_covers_the_whole_household_check(
    request: pytest.FixtureRequest,
    seed_fhir: Fhir,
    caplog: pytest.LogCaptureFixture,
    budget: str,
    delay: float,
    checked: bool,
) -> None:
    """The Group and RelatedPersons the client did not prefetch are fetched by the household
    lookup itself, within its one budget with the members' Patients and Flags: under the
    product's budget (0.3 s), at 0.2 s a request, the Group (0.2 s) and then the members
    (0.2 s) overrun it together, though each alone would not. The enquiry card still comes,
    saying the household was not checked. The case that is checked has the tests' roomy
    budget, so that a loaded machine cannot overrun it."""
    service: LiveService = request.getfixturevalue(budget)
    resources = record("seed-case")
    pid = patient_id_of(resources)
    prefetch = {
        key: value
        for key, value in prefetch_for(resources, pid).items()
        if key not in ("household", "relatedPersons")
    }
    seed_fhir.server.delay = delay
    body = request_body(pid, prefetch=prefetch, fhir_server=seed_fhir.url)
    response = service.post(SERVICE, body)
    cards = cards_of(response)
    if checked:
        assert kinds(cards) == ["enquiry", "mappa"]
        assert ("/Group", "member=seed-mum") in [
            (r.path, r.query) for r in seed_fhir.server.requests
        ]
    else:
        assert kinds(cards) == ["enquiry"]
        assert "could not be checked" in cards[0]["detail"]
        assert "household not checked: over the 300 ms budget" in caplog.text


def test_seed_case_on_encounter_start(service: LiveService, seed_fhir: Fhir) -> None:
    cards = cards_of(call(service, "seed-case", seed_fhir, hook="encounter-start"))
    assert kinds(cards) == ["enquiry", "mappa"]
    # Each hook has its own service: the patient-view one refuses an encounter-start call.
    resources = record("seed-case")
    pid = patient_id_of(resources)
    body = request_body(
        pid, prefetch=prefetch_for(resources, pid), fhir_server=None, hook="encounter-start"
    )
    assert service.post(SERVICE, body).status_code == 400


def test_seed_case_with_no_prefetch_fetches_everything(
    service: LiveService, seed_fhir: Fhir
) -> None:
    cards = cards_of(call(service, "seed-case", seed_fhir, prefetched=False))
    assert kinds(cards) == ["enquiry", "mappa"]
    assert "aged 8" in cards[0]["detail"]
