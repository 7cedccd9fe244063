"""Prefetch templates and their resolution against a real FHIR server over HTTP: tokens
rendered, templates outside the spec refused, a prefetch used as given, missing or failed
values fetched, 412 for a required value that cannot be had and unavailable for an optional
one, templates without fallback handed to the handler. The FHIR client itself is
`test_fhir_client.py`."""

import asyncio
from typing import Any

import pytest

from cds_hooks.errors import PreconditionFailed
from cds_hooks.fhir import FhirClient, resolve_prefetch
from cds_hooks.prefetch import PrefetchTemplate, render_template, shape_problem
from tests.conftest import PATIENT_ID, RunningFhir
from tests.support import web
from tests.unit.cds_hooks.fhir_support import LIMITS

pytestmark = pytest.mark.slow

TOKENS = {"context.patientId": PATIENT_ID, "context.userId": "Practitioner/u1"}


def test_render_fills_context_and_user_tokens() -> None:
    tokens = TOKENS | {"userPractitionerId": "u1"}
    assert render_template("Patient/{{context.patientId}}", tokens) == "Patient/p1"
    assert render_template("X?a={{ userPractitionerId }}", tokens) == "X?a=u1"
    # Values stay one query value even if a client sends something odd.
    assert render_template("X?a={{context.q}}", {"context.q": "1&b=2"}) == "X?a=1%26b%3D2"


@pytest.mark.parametrize(
    "query",
    [
        "Patient?_id={{context.medication.id}}",  # not a root-level context field
        "Patient?_id={{patientId}}",  # not context.<field> nor a user token
        "https://elsewhere.example/Patient/{{context.patientId}}",  # not relative
    ],
)
def test_templates_outside_the_spec_are_refused_at_registration(query: str) -> None:
    with pytest.raises(ValueError):
        PrefetchTemplate(query)


TEMPLATES = {
    "patient": PrefetchTemplate("Patient/{{context.patientId}}"),
    "conditions": PrefetchTemplate("Condition?patient={{context.patientId}}"),
    "household": PrefetchTemplate("Group?member={{context.patientId}}", required=False),
}


def resolve(
    fhir: RunningFhir | None, given: dict[str, Any] | None, templates: Any = None
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with web.AsyncClient() as http:
            client = FhirClient(http, fhir.base_url, "tok", LIMITS) if fhir else None
            data = await resolve_prefetch(templates or TEMPLATES, given, TOKENS, client)
            return {**data, "unavailable": sorted(data.unavailable)}

    return asyncio.run(run())


def test_complete_prefetch_is_used_as_given(fhir_server: RunningFhir) -> None:
    given = {"patient": {"resourceType": "Patient"}, "conditions": None, "household": None}
    assert resolve(fhir_server, given) == given | {"unavailable": []}
    assert fhir_server.server.requests == []  # null means "no data": never refetched


def test_missing_and_operation_outcome_values_are_fetched(fhir_server: RunningFhir) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    got = resolve(fhir_server, {"patient": outcome})
    assert got["patient"]["id"] == PATIENT_ID
    assert len(got["conditions"]["entry"]) == 5  # three pages of two, merged
    assert got["household"]["entry"][0]["resource"]["id"] == "household"
    paths = sorted(r.path for r in fhir_server.server.requests)
    assert paths == ["/Condition"] * 3 + ["/Group", f"/Patient/{PATIENT_ID}"]
    assert {r.authorization for r in fhir_server.server.requests} == {"Bearer tok"}


def test_no_fhir_server_means_412_for_required_and_unavailable_for_optional() -> None:
    with pytest.raises(PreconditionFailed) as error:
        resolve(None, {"patient": {"resourceType": "Patient"}})
    assert [i.diagnostics for i in error.value.issues] == [
        "prefetch 'conditions': not in the request and no fhirServer to fetch it from"
    ]
    got = resolve(None, {"patient": {"resourceType": "Patient"}, "conditions": None})
    assert got["unavailable"] == ["household"]


def test_a_token_the_context_lacks(fhir_server: RunningFhir) -> None:
    templates = {"enc": PrefetchTemplate("Encounter/{{context.encounterId}}", required=False)}
    assert resolve(fhir_server, {}, templates) == {"unavailable": ["enc"]}


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_fhir_server_failures_give_412(
    fhir_server: RunningFhir, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    fhir_server.server.fail_with = status
    with pytest.raises(PreconditionFailed) as error:
        resolve(fhir_server, {"patient": {"resourceType": "Patient"}})
    assert error.value.status == 412
    # The key and a generic reason; what the server said is for the log only (a caller must
    # not learn what answers where through us).
    (issue,) = error.value.issues
    assert issue.diagnostics == "prefetch 'conditions': could not be fetched from the FHIR server"
    assert f"HTTP {status}" in caplog.text


def test_optional_failure_is_unavailable_not_412(fhir_server: RunningFhir) -> None:
    fhir_server.server.fail_with = 500
    given = {"patient": {"resourceType": "Patient"}, "conditions": None}
    assert resolve(fhir_server, given)["unavailable"] == ["household"]


DEFERRED = TEMPLATES | {
    "household": PrefetchTemplate("Group?member={{context.patientId}}", False, fallback=False)
}
GIVEN = {"patient": {"resourceType": "Patient"}, "conditions": None}


def deferred(fhir: RunningFhir | None, given: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    async def run() -> tuple[dict[str, str], list[str]]:
        async with web.AsyncClient() as http:
            client = FhirClient(http, fhir.base_url, "tok", LIMITS) if fhir else None
            data = await resolve_prefetch(DEFERRED, given, TOKENS, client)
            return dict(data.deferred), sorted(data.unavailable)

    return asyncio.run(run())


def test_a_template_without_fallback_is_deferred_to_the_handler(fhir_server: RunningFhir) -> None:
    """Not sent: not fetched here, but handed over rendered, for the service to fetch under its
    own deadline (one budget for a whole lookup, not one per template)."""
    assert deferred(fhir_server, GIVEN) == ({"household": f"Group?member={PATIENT_ID}"}, [])
    assert fhir_server.server.requests == []
    outcome = {"resourceType": "OperationOutcome", "issue": []}  # the client's prefetch failed
    assert deferred(fhir_server, GIVEN | {"household": outcome})[0] == {
        "household": f"Group?member={PATIENT_ID}"
    }


def test_a_template_without_fallback_that_is_sent_is_used(fhir_server: RunningFhir) -> None:
    async def run() -> Any:
        async with web.AsyncClient() as http:
            client = FhirClient(http, fhir_server.base_url, "tok", LIMITS)
            return await resolve_prefetch(DEFERRED, GIVEN | {"household": None}, TOKENS, client)

    data = asyncio.run(run())
    assert data["household"] is None and dict(data.deferred) == {}


def test_a_template_without_fallback_and_no_fhir_server_is_unavailable() -> None:
    assert deferred(None, GIVEN) == ({}, ["household"])


def test_a_required_template_always_falls_back() -> None:
    with pytest.raises(ValueError, match="required"):
        PrefetchTemplate("Patient/{{context.patientId}}", fallback=False)


def test_no_token_means_412_for_required_and_unavailable_for_optional(
    fhir_server: RunningFhir,
) -> None:
    async def run(given: dict[str, Any]) -> Any:
        async with web.AsyncClient() as http:
            client = FhirClient(http, fhir_server.base_url, None, LIMITS)
            return await resolve_prefetch(TEMPLATES, given, TOKENS, client)

    with pytest.raises(PreconditionFailed) as error:
        asyncio.run(run({"patient": {"resourceType": "Patient"}}))
    assert [i.diagnostics for i in error.value.issues] == [
        "prefetch 'conditions': no access token for fhirServer (fhirAuthorization is missing); "
        "the service makes no FHIR request without one"
    ]
    got = asyncio.run(run({"patient": {"resourceType": "Patient"}, "conditions": None}))
    assert got.unavailable == {"household"}
    assert fhir_server.server.requests == []


@pytest.mark.parametrize(
    ("conditions", "said"),
    [
        ({"resourceType": "Patient", "id": "p1"}, "is 'Patient', not the Bundle its query"),
        ({"resourceType": "Bundle", "entry": "x"}, "is a Bundle whose entry is not a list"),
        ({"entry": []}, "has no resourceType: it is not a FHIR resource"),
    ],
)
def test_a_prefetch_value_of_the_wrong_shape_is_412_naming_its_key(
    conditions: dict[str, Any], said: str
) -> None:
    """Read as given, the wrong shape would be a record with no conditions in it: the enquiry
    prompt missed in silence. Said instead, as for any required data that cannot be had; never
    fetched in its place (the client said what it has)."""
    given = {"patient": {"resourceType": "Patient"}, "conditions": conditions, "household": None}
    with pytest.raises(PreconditionFailed) as error:
        resolve(None, given)
    (issue,) = error.value.issues
    assert issue.expression == "prefetch.conditions"
    assert issue.diagnostics is not None and issue.diagnostics.startswith(
        f"prefetch 'conditions': {said}"
    )


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ("Condition?patient={{context.patientId}}", "Bundle"),
        ("Condition", "Bundle"),
        ("Patient/{{context.patientId}}", "Patient"),
        ("Patient/{{context.patientId}}?_elements=birthDate", "Patient"),
        ("Patient/{{context.patientId}}/_history/2", "Patient"),
        ("Patient/{{context.patientId}}/_history", "Bundle"),
        ("Patient/{{context.patientId}}/Condition", "Bundle"),  # a compartment search
        # The template alone does not say: no check of the answer's type.
        ("{{context.userId}}", None),  # userId is itself a reference, Practitioner/123
        ("Patient/{{context.patientId}}/$everything", None),
        ("metadata", None),
        ("Observation/$lastn?patient={{context.patientId}}", None),
    ],
)
def test_the_answer_type_a_template_implies(query: str, answer: str | None) -> None:
    template = PrefetchTemplate(query)
    assert template.answer_type == answer
    if answer is None:  # any resource is taken as the answer
        assert shape_problem(template, {"resourceType": "Practitioner", "id": "1"}) is None


def test_an_optional_value_of_the_wrong_shape_is_unavailable_and_a_read_may_come_as_a_bundle() -> (
    None
):
    patient = {"resourceType": "Patient", "id": "p1"}
    given = {
        "patient": {"resourceType": "Bundle", "entry": [{"resource": patient}]},
        "conditions": {"resourceType": "Bundle"},  # no entry: an empty search
        "household": {"resourceType": "Patient"},
    }
    got = resolve(None, given)
    assert got["unavailable"] == ["household"]  # the household check says it could not be done
    assert got["patient"]["entry"][0]["resource"] == patient
