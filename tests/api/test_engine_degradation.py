"""The prompt engine over real HTTP when the household cannot be checked (the FHIR server
failing, slow, unobtainable or not given; household data malformed): the enquiry card still
comes and says so. Also the household cache, serving only the server and token it came
from, and the logs, which name no patient, token or household member.

The service runs in process with caller JWTs checked (`service`, and `tight` with the product's
household budget, from tests/api/conftest.py); household members' Patients and Flags come
from a real FHIR server (tests/support/fhir_server.py) with the caller's token. Records are
hand-made, UK-coded (SNOMED CT and Read v2) and fictional: tests/fixtures/records.
"""

import logging
import threading

import pytest

from cds_hooks import CallContext, PrefetchData
from cds_hooks.request import parse_request
from iris_prompt.engine.service import SERVICE_ID, Engine
from tests.api.engine_support import (
    CONTACTS,
    NOW,
    SEED_IDENTIFIERS,
    call,
    cards_of,
    engine_service,
    fhir_with,
    kinds,
    prefetch_for,
    record,
    request_body,
)
from tests.api.engine_support import SERVICE_PATH as SERVICE
from tests.conftest import ACCESS_TOKEN, LiveService, bundled_codesets
from tests.support.tokens import SigningKey

pytestmark = pytest.mark.slow

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
