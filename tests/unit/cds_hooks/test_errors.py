"""Error responses: OperationOutcome bodies valid as FHIR, statuses chosen in one place."""

import orjson
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from cds_hooks.errors import (
    AuthenticationFailed,
    CdsHooksError,
    FhirUnavailable,
    HookMismatch,
    InvalidRequest,
    Issue,
    PayloadTooLarge,
    ServiceNotFound,
)
from cds_hooks.http import error_response, internal_error_response


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("bad", [Issue("a: missing", expression="a"), Issue("b: wrong")]), 400),
        (HookMismatch("wrong hook"), 400),
        (ServiceNotFound("no such service"), 404),
        (PayloadTooLarge("too big"), 413),
        (FhirUnavailable("the FHIR server answered HTTP 401"), 412),
    ],
)
def test_errors_answer_with_a_valid_operation_outcome(error: CdsHooksError, status: int) -> None:
    response = error_response(error)
    assert response.status_code == status
    assert response.media_type == "application/fhir+json"
    outcome = OperationOutcome.model_validate(orjson.loads(response.body))
    assert [i.diagnostics for i in outcome.issue] == [i.diagnostics for i in error.issues]


def test_401_has_an_empty_body() -> None:
    response = error_response(AuthenticationFailed("bad signature"))
    assert response.status_code == 401 and response.body == b""
    assert response.headers["www-authenticate"] == "Bearer"


def test_500_says_nothing_of_the_failure() -> None:
    response = internal_error_response()
    outcome = OperationOutcome.model_validate(orjson.loads(response.body))
    assert response.status_code == 500 and outcome.issue[0].code == "exception"
