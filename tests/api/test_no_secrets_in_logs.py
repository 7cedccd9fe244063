"""Every log line of a full set of calls, failures included, is free of tokens and patient ids."""

import logging

import pytest

from tests.conftest import ACCESS_TOKEN, LiveService, patient_view, sample_resources
from tests.support.fhir_server import FhirTestServer
from tests.support.server import serve
from tests.support.services import EVERY_FEATURE_ID, FAILING_ID, SEARCHING_ID

PATIENT = "pat-9f8e7d6c"


def test_no_token_or_patient_id_in_any_log_line(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fhir = FhirTestServer(sample_resources(PATIENT), page_size=2)
    sent_tokens: list[str] = []

    def call(path: str, body: object, **claims: object) -> int:
        headers = live_service.headers(path, **claims)
        sent_tokens.append(headers["Authorization"].removeprefix("Bearer "))
        return live_service.post(path, body, headers=headers).status_code

    with serve(fhir.app, access_log=False) as fhir_url:
        body = patient_view(fhir_server=fhir_url)
        body["context"]["patientId"] = PATIENT
        service = f"/cds-services/{EVERY_FEATURE_ID}"
        statuses = [
            call(service, body),  # prefetch fetched with the access token
            call(f"/cds-services/{SEARCHING_ID}", body),  # a handler's own FHIR search
            call(f"/cds-services/{FAILING_ID}", body),  # a bug
            call(service, body | {"hookInstance": "nope"}),  # invalid request
            call(service, body, aud="https://elsewhere.example"),  # refused JWT
            call(service, body, exp=1),  # expired JWT
        ]
        headers = {"Authorization": f"Bearer {sent_tokens[0]}"}
        statuses.append(live_service.post(service, body, headers=headers).status_code)  # replay
        fhir.fail_with = 401
        statuses.append(call(service, body))  # FHIR server refuses the access token
    assert statuses == [200, 200, 500, 400, 401, 401, 401, 412]

    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_text:
            lines.append(record.exc_text)
    logged = "\n".join(lines)
    assert "service call answered 200" in logged and "service call refused 401" in logged
    for secret in [*sent_tokens, ACCESS_TOKEN, PATIENT]:
        assert secret not in logged
    assert "eyJ" not in logged  # no JWT of any kind


def test_a_caller_cannot_forge_log_lines(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    """A newline in the service id (logged before the JWT is even checked) stays on one line."""
    caplog.set_level(logging.DEBUG)
    forged = "/cds-services/abc%0A2026-01-01 INFO forged: line"
    assert live_service.post(forged, {}, headers={}).status_code == 401
    messages = [record.getMessage() for record in caplog.records]
    assert any("abc\\n2026-01-01 INFO forged" in message for message in messages)
    assert not any("\n" in message for message in messages)
