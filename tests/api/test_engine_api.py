"""The prompt engine over real HTTP: the seed case end to end, then a scenario per rule.

The service runs under uvicorn with caller JWTs checked; household members' Patients and Flags
come from a real FHIR server (tests/support/fhir_server.py) with the caller's token. Records are
hand-made, UK-coded (SNOMED CT and Read v2) and fictional: tests/fixtures/records.
"""

import logging
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from cds_hooks import CallContext, PrefetchData
from cds_hooks.request import parse_request
from iris_prompt.engine.service import SERVICE_ID, Engine
from tests.api.engine_support import (
    CONTACTS,
    NOW,
    RECORDS,
    TIGHT_BUDGET,
    Fhir,
    call,
    cards_of,
    engine_service,
    fhir_with,
    kinds,
    patient_id_of,
    prefetch_for,
    record,
    request_body,
)
from tests.conftest import ACCESS_TOKEN, HOOK_INSTANCE, LiveService, bundled_codesets
from tests.support.tokens import SigningKey

pytestmark = pytest.mark.slow

SERVICE = "/cds-services/iris-domestic-abuse-prompt"
# Everything identifying in the seed-case record: none of it may reach a card.
SEED_IDENTIFIERS = (
    "Rowan",
    "Fictional",
    "Sam",
    "Madeup",
    "Toby",
    "9990000018",
    "9990000026",
    "9990000034",
    "seed-partner",
    "seed-son",
    "OFFENCE",
    "NOTES ABOUT",
)


@pytest.fixture(scope="module")
def service(es384_key: SigningKey) -> Iterator[LiveService]:
    with engine_service(es384_key) as running:
        yield running


@pytest.fixture(scope="module")
def tight(es384_key: SigningKey) -> Iterator[LiveService]:
    """The service with the product's household budget, for the tests of that deadline."""
    with engine_service(es384_key, budget=TIGHT_BUDGET) as running:
        yield running


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


# --- a scenario per rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("read-v2-depression", ["enquiry"]),
        ("old-anxiety-only", []),
        ("recent-enquiry", []),
        ("trigger-after-enquiry", ["enquiry"]),
        ("known-abuse", ["known-abuse"]),
        ("aged-15", []),
        ("entered-in-error", []),
        ("expired-flag", ["enquiry"]),
        ("mappa-only", ["mappa"]),
    ],
)
def test_scenarios(service: LiveService, name: str, expected: list[str]) -> None:
    with fhir_with(name) as fhir:
        cards = cards_of(call(service, name, fhir))
    assert kinds(cards) == expected


def test_read_v2_entries_are_shown_by_their_sourced_terms(service: LiveService) -> None:
    with fhir_with("read-v2-depression") as fhir:
        (card,) = cards_of(call(service, "read-v2-depression", fhir))
    assert "- Single major depressive episode, 3 August 2026" in card["detail"]
    assert "- Anxiety state unspecified, 1 February 2026" in card["detail"]
    # No household Group and no related person: nothing could be checked, and the card says so.
    assert "**No household members are recorded**" in card["detail"]
    assert "checked: none found" not in card["detail"]


def test_known_abuse_card_reviews_safety(service: LiveService) -> None:
    with fhir_with("known-abuse") as fhir:
        (card,) = cards_of(call(service, "known-abuse", fhir))
    assert card["indicator"] == "warning"
    assert "- Victim of domestic abuse, 5 May 2021" in card["detail"]
    assert "- Depressive disorder, 5 May 2026" in card["detail"]
    assert "Is the abuse still happening?" in card["detail"] and "DASH" in card["detail"]
    # A safety review is no first enquiry: no one-click "asked, nothing disclosed" that would
    # record a routine enquiry and hold this card back; the template is linked instead.
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert [link["url"].removeprefix(service.base_url) for link in card["links"]] == [
        "/template",
        "/rules#rule-4",
    ]


def test_a_related_persons_mappa_flag_by_relationship_with_medium_risk(
    service: LiveService,
) -> None:
    with fhir_with("mappa-only") as fhir:
        (card,) = cards_of(call(service, "mappa-only", fhir))
    assert card["indicator"] == "warning"
    # The husband is a RelatedPerson the household Group does not list: a relationship, not a
    # shared home (issue 11 point 17).
    assert (
        "**A person linked to this patient's record (their husband) is subject to MAPPA**"
        in (card["detail"])
    )
    # An adult patient with a MAPPA card and no trigger: she may be the known adult at risk
    # (issue 11 point 13): how to ask, the helpline and the template link.
    assert "**The patient may be the known adult at risk.**" in card["detail"]
    assert "only when they are on their own" in card["detail"]
    assert "Example helpline 0100 000 0003" in card["detail"]
    assert [link["url"].removeprefix(service.base_url) for link in card["links"]] == [
        "/template",
        "/rules#rule-6",
    ]
    assert (
        "- to a known adult: medium" in card["detail"]
        and "- to the public: medium" in card["detail"]
    )
    assert "aged 13" in card["detail"]
    assert "Pat" not in card["detail"] and "9990000158" not in card["detail"]


def test_expired_flag_shows_nothing_about_it(service: LiveService) -> None:
    with fhir_with("expired-flag") as fhir:
        (card,) = cards_of(call(service, "expired-flag", fhir))
    assert "MAPPA flag" not in card["detail"].replace("no MAPPA flag in force", "")
    assert "1 household member checked: no MAPPA flag in force." in card["detail"]


# --- degradation -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_household_lookup_failures_still_give_the_enquiry_card(
    service: LiveService, status: int
) -> None:
    with fhir_with("seed-case") as fhir:
        fhir.server.fail_with = status
        response = call(service, "seed-case", fhir)  # the record itself comes by prefetch
    cards = cards_of(response)
    assert kinds(cards) == ["enquiry"]
    assert "Household risk could not be checked" in cards[0]["detail"]
    assert "configured to fail" not in response.text  # the FHIR server's body never leaks


def test_a_slow_household_lookup_is_abandoned_within_its_budget(
    tight: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    """The cards come while the FHIR server still holds back every household answer, so the
    call did not wait for them; the log says it stopped at the budget (0.3 s), not at the FHIR
    read timeout (1 s). Nothing is timed: the server answers only once the cards have come, or
    after its safety hold (30 s), when a service that waits gets the answers and fails here."""
    release = threading.Event()
    with fhir_with("seed-case") as fhir:
        fhir.server.hold = release
        try:
            response = call(tight, "seed-case", fhir)
            asked, unanswered = len(fhir.server.requests), fhir.server.held
        finally:
            release.set()
    assert unanswered == asked  # not one household read had been answered when the cards came
    assert "household not checked: over the 300 ms budget" in caplog.text
    cards = cards_of(response)
    assert kinds(cards) == ["enquiry"]
    assert "Household risk could not be checked" in cards[0]["detail"]


def test_without_fhir_access_the_household_is_not_checked(service: LiveService) -> None:
    (card,) = cards_of(call(service, "seed-case", None))
    assert "Household risk could not be checked" in card["detail"]
    assert "aged 8" not in card["detail"]


def test_without_a_fhir_server_a_call_answers_without_giving_way_to_other_calls() -> None:
    """With no FHIR server there is nothing to wait for: the handler answers in one step, never
    letting another call's work in between (each record parsed meanwhile is more live data for
    the garbage collector to walk: make bench's throughput with 8 clients)."""
    codesets = bundled_codesets()
    engine = Engine(codesets, cards=CONTACTS, clock=lambda: NOW)
    resources = record("seed-case")
    body = request_body("seed-mum", prefetch=prefetch_for(resources, "seed-mum"), fhir_server=None)
    request = parse_request(body)
    prefetch = PrefetchData(body["prefetch"], frozenset())
    context = CallContext(SERVICE_ID, request.hook_instance, "https://iris.test", None, None)
    answering = engine(request, prefetch, context)
    with pytest.raises(StopIteration) as answered:
        answering.send(None)  # one step, never suspended
    (card,) = answered.value.value.cards
    assert "Household risk could not be checked" in (card.detail or "")


def test_household_group_unobtainable_is_not_checked(service: LiveService) -> None:
    resources = record("seed-case")
    with fhir_with("seed-case") as fhir:
        fhir.server.fail_with = 500
        prefetch = prefetch_for(resources, "seed-mum")
        del prefetch["household"]  # the service must fetch it, and the server fails
        body = request_body("seed-mum", prefetch=prefetch, fhir_server=fhir.url)
        (card,) = cards_of(service.post(SERVICE, body))
    assert "Household risk could not be checked" in card["detail"]


# --- the household cache ---------------------------------------------------------------------


def test_cached_flags_are_served_only_to_the_same_server_and_token(es384_key: SigningKey) -> None:
    with engine_service(es384_key) as service, fhir_with("seed-case") as fhir:

        def flag_requests() -> int:
            return sum(1 for r in fhir.server.requests if r.path == "/Flag")

        call(service, "seed-case", fhir)
        first = flag_requests()
        assert first > 0
        call(service, "seed-case", fhir)
        assert flag_requests() == first  # same server, same token: from the cache
        call(service, "seed-case", fhir, token="another-token-for-another-user")
        assert flag_requests() > first  # another token never sees the cached answer
        with fhir_with("seed-case") as other:
            call(service, "seed-case", other)
            assert any(r.path == "/Flag" for r in other.server.requests)


# --- the fixture records themselves -------------------------------------------------------


@pytest.mark.parametrize("path", sorted(RECORDS.glob("*.json")), ids=lambda p: p.stem)
def test_fixture_records_are_valid_fhir_r4b(path: Any) -> None:
    Bundle.model_validate_json(path.read_bytes())


# --- logs ------------------------------------------------------------------------------------


def test_engine_logs_name_no_patient_token_or_household_member(
    service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with fhir_with("seed-case") as fhir:
        call(service, "seed-case", fhir)
        call(service, "seed-case", fhir, user="Patient/seed-mum")
        fhir.server.fail_with = 403
        call(service, "seed-case", fhir, token="a-different-token-0123")
        fhir.server.fail_with = None
        fhir.server.delay = 1.5  # over the service's FHIR read timeout (1 s)
        call(service, "seed-case", fhir, token="yet-another-token-4567")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "decision: cards=enquiry,mappa" in logged
    assert "household not checked: the FHIR server answered HTTP 403" in logged
    assert "household not checked: the FHIR server timed out" in logged
    for secret in (*SEED_IDENTIFIERS, "seed-mum", ACCESS_TOKEN, "a-different-token", "yet-another"):
        assert secret not in logged, secret


def test_malformed_household_data_costs_only_itself(
    service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreadable Group member list and RelatedPerson identifier give no members (nothing
    readable says who lives there); an unreadable verificationStatus is ignored. Nothing fails."""
    resources = record("seed-case")
    prefetch = prefetch_for(resources, "seed-mum")
    prefetch["household"]["entry"][0]["resource"]["member"] = 5  # not a list
    prefetch["relatedPersons"]["entry"][0]["resource"]["identifier"] = 7
    prefetch["conditions"]["entry"][0]["resource"]["verificationStatus"] = {"coding": 3}
    with fhir_with("seed-case") as fhir:
        body = request_body("seed-mum", prefetch=prefetch, fhir_server=fhir.url)
        cards = cards_of(service.post(SERVICE, body))
    assert kinds(cards) == ["enquiry"]
    assert "- Anxiety disorder, 2 October 2025" in cards[0]["detail"]  # the Condition still read
    assert "unexpected" not in caplog.text
