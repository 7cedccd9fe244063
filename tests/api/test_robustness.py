"""Hostile input (issue 16): refused plainly, never a 500, never echoed or logged."""

import logging

import pytest

from cds_hooks.logs import redact
from tests.conftest import LiveService, patient_view
from tests.support.services import EVERY_FEATURE_ID

PATH = f"/cds-services/{EVERY_FEATURE_ID}"


def test_two_authorization_headers_are_refused(live_service: LiveService) -> None:
    valid = live_service.headers(PATH)["Authorization"]
    other = live_service.headers(PATH)["Authorization"]
    headers = [("Authorization", valid), ("Authorization", other)]
    answer = live_service.client.post(PATH, json=patient_view(), headers=headers)
    assert answer.status_code == 401 and answer.content == b""
    # One of them alone is accepted: it was the pair that was refused.
    assert live_service.post(PATH, patient_view()).status_code != 401


def test_a_caller_chosen_prefetch_key_is_never_echoed_or_logged(
    live_service: LiveService, caplog: pytest.LogCaptureFixture
) -> None:
    key = "Jane Doe 9434765919"
    body = patient_view(prefetch={"patient": None, key: "not a resource"})
    with caplog.at_level(logging.DEBUG):
        answer = live_service.post(PATH, body)
    assert answer.status_code == 400
    (issue,) = answer.json()["issue"]
    assert issue["expression"] == ["prefetch.[key 2]"]
    for text in (answer.text, caplog.text):
        assert "Jane" not in text and "9434765919" not in text


def test_a_missing_access_token_is_logged_as_missing_not_redacted() -> None:
    message = "fhirAuthorization.access_token: Field required"
    assert redact(message) == message
    assert redact('{"access_token": "s3cr3t"}') == '{"access_token": "[redacted]"}'
    assert redact("{'access_token': 's3cr3t'}") == "{'access_token': '[redacted]'}"
