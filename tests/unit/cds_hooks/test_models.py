"""Request and response models: one test per spec rule, bad rows carry their reason."""

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from cds_hooks.errors import InvalidRequest
from cds_hooks.models import dump_json, prune_empty
from cds_hooks.request import (
    EncounterStartRequest,
    GenericRequest,
    PatientViewRequest,
    parse_request,
)
from cds_hooks.response import Action, Card, CdsResponse, Coding, Link, Source, Suggestion

HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"


def request(hook: str = "patient-view", **context: Any) -> dict[str, Any]:
    ctx = {"userId": "Practitioner/example", "patientId": "1288992"} | context
    return {"hook": hook, "hookInstance": HOOK_INSTANCE, "context": ctx}


def refused(data: dict[str, Any]) -> list[str | None]:
    with pytest.raises(InvalidRequest) as error:
        parse_request(data)
    return [issue.expression for issue in error.value.issues]


@pytest.mark.parametrize(
    "user", ["Practitioner/a", "PractitionerRole/b-1", "Patient/123", "RelatedPerson/x.y"]
)
def test_patient_view_accepts_each_user_type(user: str) -> None:
    parsed = parse_request(request(userId=user))
    assert isinstance(parsed, PatientViewRequest)
    assert parsed.context.user_type == user.split("/")[0]


@pytest.mark.parametrize(
    ("context", "where"),
    [
        ({"userId": "Organization/1"}, "context.userId"),  # not a user type of patient-view
        ({"userId": "example"}, "context.userId"),  # not [type]/[id]
        ({"userId": "Practitioner/1\n"}, "context.userId"),  # a line break would reach URLs
        ({"patientId": "1&_include=*"}, "context.patientId"),  # not a FHIR id: would inject
        ({"encounterId": ""}, "context.encounterId"),  # empty is not a FHIR id
    ],
)
def test_patient_view_context_refusals(context: dict[str, Any], where: str) -> None:
    assert refused(request(**context)) == [where]


def test_patient_view_needs_patient_id_and_encounter_is_optional() -> None:
    data = request()
    del data["context"]["patientId"]
    assert refused(data) == ["context.patientId"]
    assert parse_request(request()).context.encounter_id is None  # type: ignore[union-attr]


def test_encounter_start_needs_encounter_and_a_practitioner() -> None:
    assert refused(request("encounter-start")) == ["context.encounterId"]
    assert refused(request("encounter-start", encounterId="e1", userId="Patient/1")) == [
        "context.userId"
    ]
    parsed = parse_request(request("encounter-start", encounterId="e1"))
    assert isinstance(parsed, EncounterStartRequest)


def test_unknown_hook_keeps_its_context() -> None:
    data = request("order-select", draftOrders={"resourceType": "Bundle"}, selections=["a"])
    parsed = parse_request(data)
    assert isinstance(parsed, GenericRequest)
    assert parsed.context.model_dump(by_alias=True)["draftOrders"] == {"resourceType": "Bundle"}


def test_every_problem_is_named_at_once() -> None:
    data = {"hook": "patient-view", "hookInstance": "not-a-uuid", "context": {"userId": "x"}}
    assert refused(data) == ["hookInstance", "context.userId", "context.patientId"]


def test_cds_r_1_fhir_authorization_needs_fhir_server() -> None:
    data = request() | {
        "fhirAuthorization": {
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/*.read",
            "subject": "iris",
        }
    }
    with pytest.raises(InvalidRequest, match="request is invalid") as error:
        parse_request(data)
    assert "cds-r-1" in error.value.issues[0].diagnostics


def test_fhir_authorization_fields_and_token_never_printed() -> None:
    auth = {
        "access_token": "s3cr3t-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "iris",
        "patient": "1288992",
    }
    parsed = parse_request(
        request() | {"fhirServer": "https://ehr.example", "fhirAuthorization": auth}
    )
    assert parsed.fhir_authorization is not None
    assert parsed.fhir_authorization.access_token.get_secret_value() == "s3cr3t-token"
    assert "s3cr3t-token" not in repr(parsed) and "s3cr3t-token" not in str(parsed)
    assert b"s3cr3t-token" not in dump_json(parsed)
    bad = auth | {"token_type": "MAC"}
    assert refused(request() | {"fhirServer": "https://e.x", "fhirAuthorization": bad}) == [
        "fhirAuthorization.token_type"
    ]


def test_fhir_server_must_be_an_absolute_url() -> None:
    assert refused(request() | {"fhirServer": "/fhir"}) == ["fhirServer"]


def test_prefetch_values_are_resources_or_null() -> None:
    ok = parse_request(request() | {"prefetch": {"a": {"resourceType": "Patient"}, "b": None}})
    assert ok.prefetch == {"a": {"resourceType": "Patient"}, "b": None}
    # Keys are the caller's choice: a problem names the key's position, never the key.
    assert refused(request() | {"prefetch": {"a": None, "b": "123"}}) == ["prefetch.[key 2]"]


@pytest.mark.parametrize("hook", [["patient-view"], {"a": 1}, 5, None])
def test_a_hook_that_is_not_a_string_is_refused_by_name(hook: object) -> None:
    assert "hook" in refused(request() | {"hook": hook})


@pytest.mark.parametrize(
    "server", ["https://e.x/fhir\r\nX-Evil: 1", "https://e.x/a b", "https://é.x"]
)
def test_a_fhir_server_that_cannot_be_sent_is_refused(server: str) -> None:
    assert refused(request() | {"fhirServer": server}) == ["fhirServer"]


@pytest.mark.parametrize(
    "server",
    [
        "http://fhiruser:S3cretPass@ehr.example/fhir",
        "https://fhiruser@ehr.example/fhir",
        "https://:S3cretPass@ehr.example/fhir",
        "https://@ehr.example/fhir",
    ],
)
def test_a_fhir_server_with_credentials_in_it_is_refused(server: str) -> None:
    """httpx would send them as Basic auth instead of the caller's Bearer token, and the URL,
    password and all, would be kept in the disclosure audit."""
    with pytest.raises(InvalidRequest) as error:
        parse_request(request() | {"fhirServer": server})
    (issue,) = error.value.issues
    assert issue.expression == "fhirServer"
    assert "S3cretPass" not in str(issue.diagnostics)


@pytest.mark.parametrize("token", ["tökén", "two words", "tab\tbed", ""])
def test_an_access_token_that_cannot_be_sent_is_refused(token: str) -> None:
    auth = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "s",
        "subject": "s",
    }
    body = request() | {"fhirServer": "https://e.x", "fhirAuthorization": auth}
    assert refused(body) == ["fhirAuthorization.access_token"]


def test_user_and_context_prefetch_tokens() -> None:
    parsed = parse_request(request(userId="PractitionerRole/r1", encounterId="e9"))
    assert parsed.context.prefetch_tokens() == {
        "context.userId": "PractitionerRole/r1",
        "context.patientId": "1288992",
        "context.encounterId": "e9",
        "userPractitionerRoleId": "r1",
    }


def test_only_root_level_primitives_are_tokens() -> None:
    data = request("order-select", draftOrders={"id": "x"}, count=2, urgent=True)
    tokens = parse_request(data).context.prefetch_tokens()
    assert tokens["context.count"] == "2" and tokens["context.urgent"] == "true"
    assert "context.draftOrders" not in tokens


# --- response -----------------------------------------------------------------------------

SOURCE = Source(label="IRIS")


def card(**fields: Any) -> Card:
    return Card(**({"summary": "Ask", "indicator": "info", "source": SOURCE} | fields))


def test_summary_is_under_140_characters_when_built() -> None:
    assert card(summary="x" * 139).summary == "x" * 139
    with pytest.raises(ValidationError, match="at most 139"):
        card(summary="x" * 140)
    with pytest.raises(ValidationError):
        card(summary="")


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"indicator": "urgent"}, "indicator"),  # info, warning or critical only
        ({"suggestions": [Suggestion(label="a")]}, "cds-resp-6"),
        (
            {
                "suggestions": [
                    Suggestion(label="a", is_recommended=True),
                    Suggestion(label="b", is_recommended=True),
                ],
                "selection_behavior": "at-most-one",
            },
            "cds-resp-1",
        ),
        ({"override_reasons": [Coding(system="s", code="c")]}, "cds-resp-4"),
        ({"selection_behavior": "all"}, "'at-most-one' or 'any'"),
        ({"summary_text": "misspelt"}, "summary_text"),  # outbound models forbid extra fields
    ],
)
def test_card_invariants(fields: dict[str, Any], rule: str) -> None:
    with pytest.raises(ValidationError, match=rule):
        card(**fields)


def test_any_selection_allows_several_recommended() -> None:
    two = [Suggestion(label="a", is_recommended=True), Suggestion(label="b", is_recommended=True)]
    assert card(suggestions=two, selection_behavior="any").suggestions == two


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"type": "create", "description": "d"}, "needs a FHIR resource"),
        ({"type": "update", "description": "d", "resource": {"id": "x"}}, "resourceType"),
        ({"type": "delete", "description": "d"}, "cds-resp-2"),
        (
            {
                "type": "delete",
                "description": "d",
                "resourceId": "T/1",
                "resource": {"resourceType": "T"},
            },
            "cds-resp-2",
        ),
        ({"type": "create", "resource": {"resourceType": "T"}}, "description"),
        ({"type": "patch", "description": "d"}, "type"),
    ],
)
def test_action_rules(fields: dict[str, Any], rule: str) -> None:
    with pytest.raises(ValidationError, match=rule):
        Action.model_validate(fields)


def test_link_rules() -> None:
    smart = Link(label="App", url="https://app.example/launch", type="smart", app_context="{}")
    assert smart.app_context == "{}"
    with pytest.raises(ValidationError, match="cds-resp-3"):
        Link(label="Doc", url="https://doc.example", type="absolute", app_context="{}")
    with pytest.raises(ValidationError, match="absolute"):
        Link(label="Doc", url="/relative", type="absolute")
    with pytest.raises(ValidationError, match="absolute"):
        Source(label="x", icon="icon.png")


def test_output_has_no_null_or_empty_values_except_cards() -> None:
    response = CdsResponse(
        cards=[card(suggestions=[], links=[], detail=None, extension={})], system_actions=[]
    )
    assert orjson.loads(dump_json(response)) == {
        "cards": [{"summary": "Ask", "indicator": "info", "source": {"label": "IRIS"}}]
    }
    assert dump_json(CdsResponse()) == b'{"cards":[]}'


def _suggesting(resource: dict[str, Any], **fields: Any) -> CdsResponse:
    action = Action(type="create", description="Record", resource=resource)
    suggestion = Suggestion(label="Record it", actions=[action])
    suggesting = card(suggestions=[suggestion], selection_behavior="at-most-one", **fields)
    return CdsResponse(cards=[suggesting])


def test_empty_values_inside_suggested_resources_are_dropped_too() -> None:
    resource = {"resourceType": "Observation", "status": "", "note": [], "code": {"text": "x"}}
    out = orjson.loads(dump_json(_suggesting(resource)))
    suggested = out["cards"][0]["suggestions"][0]["actions"][0]["resource"]
    assert suggested == {"resourceType": "Observation", "code": {"text": "x"}}


@pytest.mark.parametrize(
    "text",
    ["Ask privately – when alone", 'A "quoted" word', "Brackets [] and braces {} in prose"],
)
def test_a_clean_response_is_serialised_whole(text: str) -> None:
    # Nothing to drop: the JSON is what the model holds, whatever the text looks like.
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": text}}
    out = orjson.loads(dump_json(_suggesting(resource, detail=text)))
    assert out["cards"][0]["detail"] == text
    assert out["cards"][0]["suggestions"][0]["actions"][0]["resource"] == resource


def _walked(model: Any) -> bytes:
    """The JSON by the full walk, which dump_json skips when nothing is empty."""
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return orjson.dumps(prune_empty(data, frozenset({"cards", "services"})))


@pytest.mark.parametrize(
    "extension",
    [
        {"score": 1.5, "big": 1e16, "tiny": -0.0, "count": 3, "ok": True},
        {"text": "Ask privately – é ü 中", "quote": 'a "quoted" word', "slash": "a/b\\c"},
        {"nested": {"list": [1, "two", {"three": 3.0}]}},
    ],
)
def test_the_fast_route_writes_the_same_bytes_as_the_walk(extension: dict[str, Any]) -> None:
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    response = _suggesting(resource, detail="**Why now**", extension=extension)
    raw = dump_json(response)
    assert not any(empty in raw for empty in (b'""', b"[]", b"{}", b"null"))  # the fast route
    assert raw == _walked(response)


def test_output_uses_camel_case_names() -> None:
    out = orjson.loads(
        dump_json(
            CdsResponse(
                cards=[
                    card(
                        suggestions=[Suggestion(label="a", is_recommended=True)],
                        selection_behavior="any",
                        override_reasons=[Coding(system="s", code="c", display="C")],
                    )
                ],
                system_actions=[Action(type="delete", description="d", resource_id="T/1")],
            )
        )
    )
    assert set(out) == {"cards", "systemActions"}
    assert {"selectionBehavior", "overrideReasons"} <= set(out["cards"][0])
    assert out["cards"][0]["suggestions"][0]["isRecommended"] is True
    assert out["systemActions"][0]["resourceId"] == "T/1"


@pytest.mark.parametrize(
    ("model", "fields", "missing"),
    [
        (Card, {"summary": "s", "indicator": "info"}, "source"),
        (Card, {"summary": "s", "source": SOURCE}, "indicator"),
        (Source, {"url": "https://a.example"}, "label"),
        (Suggestion, {"uuid": "u"}, "label"),
        (Link, {"url": "https://a.example", "type": "absolute"}, "label"),
        (Link, {"label": "a", "type": "absolute"}, "url"),
        (Link, {"label": "a", "url": "https://a.example"}, "type"),
        (Coding, {"system": "s", "display": "d"}, "code"),
        (Coding, {"code": "c", "display": "d"}, "system"),
    ],
)
def test_what_the_service_sends_has_every_required_field(
    model: type[Any], fields: dict[str, Any], missing: str
) -> None:
    """Spec "Card", "Source", "Suggestion", "Link" and "Coding": required fields cannot be left
    out of anything the service builds."""
    with pytest.raises(ValidationError, match=missing):
        model(**fields)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (Source, {"label": "x", "url": "/guidance"}),  # source.url: an absolute URL
        (Source, {"label": "x", "topic": "700410005"}),  # source.topic: a Coding
        (Card, {"summary": "s", "indicator": "info", "source": SOURCE, "uuid": 7}),
        (Suggestion, {"label": "a", "uuid": 7}),  # uuid: a string
        (Suggestion, {"label": "a", "is_recommended": "maybe"}),  # isRecommended: a boolean
        (Suggestion, {"label": "a", "actions": {"type": "create"}}),  # actions: an array
        (Link, {"label": "a", "url": "https://a.example", "type": "smart", "app_context": {}}),
        (Card, {"summary": "s", "indicator": "info", "source": SOURCE, "links": {}}),
        (Card, {"summary": "s", "indicator": "info", "source": SOURCE, "override_reasons": {}}),
    ],
)
def test_what_the_service_sends_has_the_spec_types(
    model: type[Any], fields: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        model(**fields)
