"""Prefetch fallback end to end: the service fetches what the client did not send from the
client's FHIR server (a real server here), with the client's access token."""

from contextlib import AbstractContextManager

import httpx
import pytest
from fastapi import FastAPI

from cds_hooks.auth import TrustedIssuer
from iris_prompt.app import create_app
from iris_prompt.settings import Settings
from tests.conftest import (
    ACCESS_TOKEN,
    TEST_ISSUER,
    LiveService,
    RunningFhir,
    bundled_codesets,
    live,
    make_registry,
    patient_view,
)
from tests.support.services import EVERY_FEATURE_ID, SEARCHING_ID
from tests.support.tokens import SigningKey, jwks

pytestmark = pytest.mark.slow

PATH = f"/cds-services/{EVERY_FEATURE_ID}"


def detail(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["cards"][0]["detail"]
    return text.split(";")[0]


def test_missing_prefetch_is_fetched_with_paging_and_the_access_token(
    live_service: LiveService, fhir_server: RunningFhir
) -> None:
    response = live_service.post(PATH, patient_view(fhir_server=fhir_server.base_url))
    assert detail(response) == "conditions=Bundle(5) household=Bundle(1) patient=Patient"
    requests = fhir_server.server.requests
    assert len([r for r in requests if r.path == "/Condition"]) == 3  # pages of two
    assert {r.authorization for r in requests} == {f"Bearer {ACCESS_TOKEN}"}


def test_operation_outcome_in_prefetch_is_refetched(
    live_service: LiveService, fhir_server: RunningFhir
) -> None:
    failed = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1"},
        "conditions": failed,
        "household": None,
    }
    response = live_service.post(
        PATH, patient_view(prefetch=prefetch, fhir_server=fhir_server.base_url)
    )
    assert detail(response) == "conditions=Bundle(5) household=null patient=Patient"
    assert {r.path for r in fhir_server.server.requests} == {"/Condition"}


def test_null_prefetch_is_not_refetched(
    live_service: LiveService, fhir_server: RunningFhir
) -> None:
    prefetch = {"patient": None, "conditions": None, "household": None}
    response = live_service.post(
        PATH, patient_view(prefetch=prefetch, fhir_server=fhir_server.base_url)
    )
    assert detail(response) == "conditions=null household=null patient=null"
    assert fhir_server.server.requests == []


@pytest.mark.parametrize("status", [401, 403, 500])
def test_fhir_server_refusal_or_failure_is_412(
    live_service: LiveService, fhir_server: RunningFhir, status: int
) -> None:
    fhir_server.server.fail_with = status
    response = live_service.post(PATH, patient_view(fhir_server=fhir_server.base_url))
    assert response.status_code == 412
    issues = response.json()["issue"]
    # The keys and a generic reason: what the server answered stays in the log.
    assert {i["diagnostics"] for i in issues} == {
        "prefetch 'patient': could not be fetched from the FHIR server",
        "prefetch 'conditions': could not be fetched from the FHIR server",
    }
    assert f"HTTP {status}" not in response.text


def test_fhir_server_timeout_is_412(live_service: LiveService, fhir_server: RunningFhir) -> None:
    fhir_server.server.delay = 1.5  # the live service's read timeout is 1 s
    response = live_service.post(PATH, patient_view(fhir_server=fhir_server.base_url))
    assert response.status_code == 412
    assert "could not be fetched from the FHIR server" in response.text
    assert "timed out" not in response.text


def test_no_fhir_server_and_missing_prefetch_is_412(live_service: LiveService) -> None:
    response = live_service.post(PATH, patient_view(prefetch={"patient": None}))
    assert response.status_code == 412
    assert "no fhirServer" in response.text


def test_optional_prefetch_that_fails_is_unavailable(
    live_service: LiveService, fhir_server: RunningFhir
) -> None:
    prefetch = {"patient": None, "conditions": None}
    fhir_server.server.fail_with = 503
    response = live_service.post(
        PATH, patient_view(prefetch=prefetch, fhir_server=fhir_server.base_url)
    )
    assert detail(response) == "conditions=null patient=null household=unavailable"


def test_a_handler_searches_further_with_the_calls_fhir_client(
    live_service: LiveService, fhir_server: RunningFhir
) -> None:
    response = live_service.post(
        f"/cds-services/{SEARCHING_ID}", patient_view(fhir_server=fhir_server.base_url)
    )
    assert response.json()["cards"][0]["summary"] == "1 active flags"
    assert fhir_server.server.requests[0].authorization == f"Bearer {ACCESS_TOKEN}"
    fhir_server.server.fail_with = 401
    # A FHIR failure the handler does not handle is the spec's 412, not a 500.
    failed = live_service.post(
        f"/cds-services/{SEARCHING_ID}", patient_view(fhir_server=fhir_server.base_url)
    )
    assert failed.status_code == 412


def private_address_service(
    key: SigningKey, fhir_servers: tuple[str, ...] = ()
) -> AbstractContextManager[LiveService]:
    """The real app as deployed: loopback and private fhirServer addresses not allowed."""

    def build(base_url: str) -> FastAPI:
        issuer = TrustedIssuer(iss=TEST_ISSUER, jwks=jwks(key), fhir_servers=fhir_servers)
        settings = Settings(
            trusted_issuers=[issuer], fhir_allow_http=True, public_base_url=base_url
        )
        return create_app(settings, registry=make_registry(), codesets=bundled_codesets())

    return live(build, key)


@pytest.mark.parametrize(
    "server", ["{fhir}", "http://169.254.169.254/latest", "http://10.1.2.3/fhir", "http://[::1]/"]
)
def test_a_loopback_link_local_or_private_fhir_server_is_not_read(
    es384_key: SigningKey,
    fhir_server: RunningFhir,
    server: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = server.format(fhir=fhir_server.base_url)
    with private_address_service(es384_key) as service:
        response = service.post(PATH, patient_view(fhir_server=url))
    assert response.status_code == 412
    assert "could not be fetched from the FHIR server" in response.text
    assert "private" not in response.text and "169.254" not in response.text
    assert "loopback, link-local or private address" in caplog.text
    assert fhir_server.server.requests == []


def test_an_allow_listed_fhir_server_is_read_and_no_other(
    es384_key: SigningKey, fhir_server: RunningFhir, caplog: pytest.LogCaptureFixture
) -> None:
    with private_address_service(es384_key, (fhir_server.base_url + "/",)) as service:
        listed = service.post(PATH, patient_view(fhir_server=fhir_server.base_url))
        assert detail(listed).startswith("conditions=Bundle(5)")
        other = service.post(PATH, patient_view(fhir_server="https://fhir.elsewhere.example"))
    assert other.status_code == 412
    assert "not on the client's allow-list" in caplog.text
