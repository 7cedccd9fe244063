"""CDS Hooks: "CDS Services [must] present a valid access token to the FHIR server with each API
call". Outside local mode the service makes no FHIR request without the caller's access token:
not to complete the prefetch, not to follow a search's pages, not to look the household up. A
required key it cannot have is 412; the household check says it could not be done. Local mode
may read an open development server anonymously (and says so at start-up).

The FHIR server is real (tests/support/fhir_server.py) and records every request's headers.
"""

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from iris_prompt.app import LOCAL_MODE_WARNING, create_app
from iris_prompt.settings import Settings
from tests.api.engine_support import (
    SERVICE_PATH,
    Fhir,
    cards_of,
    engine_registry,
    fhir_serving,
    kinds,
    prefetch_for,
    record,
    request_body,
)
from tests.conftest import ACCESS_TOKEN, LiveService, bundled_codesets
from tests.support.fhir_server import FhirTestServer
from tests.support.inprocess import in_process
from tests.support.server import serve

PID = "seed-mum"
# The seed case's household: a partner with a MAPPA flag in force, a son of 8.
HOUSEHOLD_READS = {"/Group", "/Patient/seed-partner", "/Flag"}


@pytest.fixture
def paged_fhir() -> Iterator[Fhir]:
    """The seed case on a real FHIR server answering one resource a page, so every search
    the service makes is followed through `next` links."""
    server = FhirTestServer(record("seed-case"), page_size=1)
    with serve(server.app, access_log=False) as url:
        yield Fhir(server, url)


def without_token(body: dict[str, Any]) -> dict[str, Any]:
    """The request a CDS client sends naming `fhirServer` but lending no access token."""
    del body["fhirAuthorization"]
    return body


def test_every_fhir_request_carries_the_callers_token(
    service: LiveService, paged_fhir: Fhir
) -> None:
    """Nothing prefetched: the record, its pages and the household all come from the FHIR
    server, and every one of those requests presents the caller's token."""
    body = request_body(PID, prefetch=None, fhir_server=paged_fhir.url)
    cards = cards_of(service.post(SERVICE_PATH, body))
    assert kinds(cards) == ["enquiry", "mappa"]
    requests = paged_fhir.server.requests
    paths = {r.path for r in requests}
    assert {"/Patient/seed-mum", "/Condition", "/Observation"} | HOUSEHOLD_READS <= paths
    assert any("_offset=" in r.query for r in requests)  # searches followed through pages
    assert {r.authorization for r in requests} == {f"Bearer {ACCESS_TOKEN}"}


def test_prefetch_fallback_without_a_token_is_412_and_asks_nothing(
    service: LiveService, paged_fhir: Fhir
) -> None:
    body = without_token(request_body(PID, prefetch=None, fhir_server=paged_fhir.url))
    response = service.post(SERVICE_PATH, body)
    assert response.status_code == 412, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    diagnostics = " ".join(issue["diagnostics"] for issue in outcome["issue"])
    assert "prefetch 'patient'" in diagnostics
    assert "no access token for fhirServer (fhirAuthorization is missing)" in diagnostics
    assert paged_fhir.server.requests == []


def test_a_required_key_missing_without_a_token_is_412(
    service: LiveService, paged_fhir: Fhir
) -> None:
    """Only `conditions` is missing: it cannot be fetched without a token, so 412 names it."""
    prefetch = prefetch_for(record("seed-case"), PID)
    del prefetch["conditions"]
    body = without_token(request_body(PID, prefetch=prefetch, fhir_server=paged_fhir.url))
    response = service.post(SERVICE_PATH, body)
    assert response.status_code == 412, response.text
    (issue,) = response.json()["issue"]
    assert issue["diagnostics"].startswith("prefetch 'conditions': no access token")
    assert paged_fhir.server.requests == []


@pytest.mark.parametrize(
    "not_sent",
    [(), ("household",), ("household", "relatedPersons")],
    ids=["household-prefetched", "group-not-sent", "group-and-related-not-sent"],
)
def test_household_lookup_without_a_token_is_not_made_and_says_so(
    service: LiveService, paged_fhir: Fhir, not_sent: tuple[str, ...]
) -> None:
    """The record is prefetched, so the enquiry card shows; the household members' Patients
    and Flags (and the Group, when not sent) would need the FHIR server: not asked, and the
    card says the household could not be checked, never that it was."""
    prefetch = prefetch_for(record("seed-case"), PID)
    for key in not_sent:
        del prefetch[key]
    body = without_token(request_body(PID, prefetch=prefetch, fhir_server=paged_fhir.url))
    cards = cards_of(service.post(SERVICE_PATH, body))
    assert kinds(cards) == ["enquiry"]
    assert "Household risk could not be checked" in cards[0]["detail"]
    assert "checked: no MAPPA flag" not in cards[0]["detail"]
    assert paged_fhir.server.requests == []


def test_an_empty_access_token_is_refused_naming_the_field(
    service: LiveService, paged_fhir: Fhir
) -> None:
    """An empty `access_token` is malformed (the spec requires a token): 400 naming the field,
    and nothing is read anonymously in its place."""
    body = request_body(PID, prefetch=None, fhir_server=paged_fhir.url, token="")
    response = service.post(SERVICE_PATH, body)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["fhirAuthorization.access_token"]
    assert paged_fhir.server.requests == []


# --- local mode ----------------------------------------------------------------------------


def local_app() -> FastAPI:
    settings = Settings(local_mode=True)
    return create_app(settings, registry=engine_registry(), codesets=bundled_codesets())


def test_local_mode_reads_an_open_server_anonymously_and_says_so_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resources = record("seed-case")
    with fhir_serving(resources) as fhir, caplog.at_level(logging.WARNING, "iris_prompt.app"):
        with in_process(local_app(), "http://127.0.0.1:8000") as client:
            body = without_token(request_body(PID, prefetch=None, fhir_server=fhir.url))
            response = client.post(SERVICE_PATH, json=body)
        assert kinds(cards_of(response)) == ["enquiry", "mappa"]
        assert HOUSEHOLD_READS <= {r.path for r in fhir.server.requests}
        assert {r.authorization for r in fhir.server.requests} == {None}
    assert LOCAL_MODE_WARNING in caplog.text
    assert "read anonymously" in LOCAL_MODE_WARNING
