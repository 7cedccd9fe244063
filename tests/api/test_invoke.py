"""Invocation over real HTTP: routing by id, the request model, errors, the response."""

from typing import Any

import httpx
import orjson
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from iris_prompt.engine.service import SERVICE_ID
from tests.conftest import LiveService, patient_view
from tests.support.services import EVERY_FEATURE_ID, FAILING_ID

COMPLETE = {
    "patient": {"resourceType": "Patient", "id": "p1"},
    "conditions": {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Condition", "id": "c1"}}],
    },
    "household": None,
}


def outcome(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/fhir+json"
    return [
        issue.diagnostics or "" for issue in OperationOutcome.model_validate(response.json()).issue
    ]


def test_every_card_feature_reaches_the_client(live_service: LiveService) -> None:
    response = live_service.post(
        f"/cds-services/{EVERY_FEATURE_ID}", patient_view(prefetch=COMPLETE)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    card = body["cards"][0]
    assert set(card) == {
        "uuid",
        "summary",
        "detail",
        "indicator",
        "source",
        "suggestions",
        "selectionBehavior",
        "overrideReasons",
        "links",
    }
    assert set(card["source"]) == {"label", "url", "icon", "topic"}
    assert [a["type"] for a in card["suggestions"][0]["actions"]] == ["create", "update", "delete"]
    assert [link["type"] for link in card["links"]] == ["absolute", "smart"]
    assert "appContext" in card["links"][1] and "appContext" not in card["links"][0]
    assert body["systemActions"][0]["type"] == "create"
    # What the handler was given, reported in the card: the client's prefetch, untouched.
    assert card["detail"].startswith("conditions=Bundle(1) household=null patient=Patient; fhir=no")
    assert f"base={live_service.base_url}" in card["detail"]


def _no_null_or_empty(value: Any, top: bool = True) -> bool:
    if isinstance(value, dict):
        return all(
            (k == "cards" and top) or (v not in (None, "", [], {}) and _no_null_or_empty(v, False))
            for k, v in value.items()
        )
    if isinstance(value, list):
        return all(v not in (None, "", [], {}) and _no_null_or_empty(v, False) for v in value)
    return True


def test_output_has_no_null_or_empty_values(live_service: LiveService) -> None:
    response = live_service.post(
        f"/cds-services/{EVERY_FEATURE_ID}", patient_view(prefetch=COMPLETE)
    )
    assert _no_null_or_empty(response.json())


def test_the_product_service_answers_no_cards_for_a_record_with_nothing_to_act_on(
    live_service: LiveService,
) -> None:
    prefetch = {"patient": COMPLETE["patient"], "conditions": None, "observations": None}
    response = live_service.post(f"/cds-services/{SERVICE_ID}", patient_view(prefetch=prefetch))
    assert response.status_code == 200
    assert response.content == b'{"cards":[]}'


def test_unknown_service_is_404(live_service: LiveService) -> None:
    response = live_service.post("/cds-services/no-such-service", patient_view(prefetch=COMPLETE))
    assert response.status_code == 404
    assert outcome(response) == ["there is no CDS service 'no-such-service'"]


def test_hook_not_served_by_that_service_is_400(live_service: LiveService) -> None:
    body = patient_view(prefetch=COMPLETE) | {"hook": "order-sign"}
    response = live_service.post(f"/cds-services/{EVERY_FEATURE_ID}", body)
    assert response.status_code == 400
    assert outcome(response) == ["hook must be one of: patient-view"]


def test_malformed_json_is_400(live_service: LiveService) -> None:
    response = live_service.post(
        f"/cds-services/{EVERY_FEATURE_ID}", content=b'{"hook": "patient-view",'
    )
    assert response.status_code == 400
    assert outcome(response)[0].startswith("malformed JSON")
    array = live_service.post(f"/cds-services/{EVERY_FEATURE_ID}", content=b"[]")
    assert array.status_code == 400 and outcome(array) == ["the body must be a JSON object"]


def test_invalid_request_names_each_problem(live_service: LiveService) -> None:
    body = {
        "hook": "patient-view",
        "hookInstance": "x",
        "context": {"userId": "Device/1"},
        "fhirAuthorization": {"access_token": "t"},
    }
    response = live_service.post(f"/cds-services/{EVERY_FEATURE_ID}", body)
    assert response.status_code == 400
    problems = outcome(response)
    assert [p.split(":")[0] for p in problems] == [
        "hookInstance",
        "fhirAuthorization.token_type",
        "fhirAuthorization.expires_in",
        "fhirAuthorization.scope",
        "fhirAuthorization.subject",
        "context.userId",
        "context.patientId",
    ]


def test_fhir_authorization_without_fhir_server_is_400(live_service: LiveService) -> None:
    body = patient_view(prefetch=COMPLETE, fhir_server="https://ehr.example")
    del body["fhirServer"]
    response = live_service.post(f"/cds-services/{EVERY_FEATURE_ID}", body)
    assert response.status_code == 400
    assert "cds-r-1" in outcome(response)[0]


def test_a_content_length_in_digits_that_are_not_ascii_is_no_500(
    live_service: LiveService,
) -> None:
    """'¹' (Latin-1 0xB9) passes str.isdigit() and int() refuses it: the declared length is
    not a number, so the body itself is read (and counted against the limit)."""
    body = orjson.dumps(patient_view(prefetch=COMPLETE))
    path = f"/cds-services/{EVERY_FEATURE_ID}"
    headers = live_service.headers(path) | {"Content-Length": b"\xb9"}  # type: ignore[dict-item]
    response = live_service.client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text


def test_body_over_the_limit_is_413(live_service: LiveService) -> None:
    big = orjson.dumps(
        patient_view(
            prefetch={"patient": {"resourceType": "Patient", "text": "x" * (16 * 1024 * 1024)}}
        )
    )
    response = live_service.post(f"/cds-services/{EVERY_FEATURE_ID}", content=big)
    assert response.status_code == 413
    assert outcome(response) == [f"the body is over the {16 * 1024 * 1024}-byte limit"]


def test_body_over_the_limit_without_content_length_is_413(live_service: LiveService) -> None:
    async def chunks() -> Any:
        for _ in range(17):
            yield b" " * (1024 * 1024)

    path = f"/cds-services/{EVERY_FEATURE_ID}"
    response = live_service.client.post(path, content=chunks(), headers=live_service.headers(path))
    assert response.status_code == 413


def test_a_bug_is_500_without_stack_trace_or_patient_data(live_service: LiveService) -> None:
    response = live_service.post(f"/cds-services/{FAILING_ID}", patient_view(prefetch=COMPLETE))
    assert response.status_code == 500
    assert outcome(response) == ["internal error; the incident is logged by hookInstance"]
    assert b"p1" not in response.content and b"Traceback" not in response.content


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_only_post_invokes(live_service: LiveService, method: str) -> None:
    path = f"/cds-services/{EVERY_FEATURE_ID}"
    response = live_service.client.request(method, path, headers=live_service.headers(path))
    assert response.status_code == 405
