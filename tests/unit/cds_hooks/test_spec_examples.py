"""Conformance: every CDS Hooks 2.0.1 spec example a service meets parses into our models and
serialises back equal, and the AHRQ request examples are accepted.

Four spec examples break the spec's own rules; for each, the test shows the model names the
exact rule, and that the example round-trips once that one point is mended.
"""

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import TypeAdapter, ValidationError

from cds_hooks.auth import keys_by_kid
from cds_hooks.discovery import DiscoveryResponse
from cds_hooks.feedback import FeedbackRequest
from cds_hooks.models import OutboundModel, dump_json
from cds_hooks.request import FhirAuthorization, GenericContext, PatientViewRequest, parse_request
from cds_hooks.response import Action, CdsResponse, Coding, Source

PrefetchTemplates = TypeAdapter(dict[str, str])
PrefetchValues = TypeAdapter(dict[str, dict[str, Any] | None])
OverrideReasons = TypeAdapter(list[Coding])


def field_of(adapter: TypeAdapter[Any]) -> Any:
    return adapter.validate_python


# example -> (parser, the key of the fragment when the example is one field of a larger object)
SERVICE_SIDE: dict[str, tuple[Any, str | None]] = {
    "ex00": (DiscoveryResponse.model_validate, None),
    "ex01": (parse_request, None),
    "ex02": (field_of(PrefetchTemplates), "prefetch"),
    "ex03": (field_of(TypeAdapter(GenericContext)), "context"),
    "ex04": (field_of(TypeAdapter(GenericContext)), "context"),
    "ex05": (field_of(TypeAdapter(GenericContext)), "context"),
    "ex06": (field_of(PrefetchTemplates), "prefetch"),
    "ex08": (FhirAuthorization.model_validate, "fhirAuthorization"),
    "ex09": (CdsResponse.model_validate, None),
    "ex10": (Source.model_validate, "source"),
    "ex11": (Action.model_validate, None),
    "ex12": (Action.model_validate, None),
    "ex13": (Action.model_validate, None),
    "ex14": (field_of(OverrideReasons), "overrideReasons"),
    "ex16": (CdsResponse.model_validate, None),
    "ex18": (FeedbackRequest.model_validate, None),
    "ex19": (FeedbackRequest.model_validate, None),
    "ex20": (FeedbackRequest.model_validate, None),
    "ex26": (DiscoveryResponse.model_validate, None),
}


def example(reference_dir: Path, name: str) -> dict[str, Any]:
    path = next((reference_dir / "cds-hooks" / "examples").glob(f"v2.0.1-{name}-*.json"))
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def dumped(value: Any) -> Any:
    """The parsed value back as JSON data, the way we would send it (inbound models, which we
    never send, the way pydantic dumps them)."""
    if isinstance(value, dict):
        return {key: dumped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [dumped(item) for item in value]
    if isinstance(value, OutboundModel):
        return json.loads(dump_json(value))  # what goes on the wire, through the real serialiser
    if hasattr(value, "model_dump"):
        return json.loads(
            json.dumps(
                value.model_dump(
                    mode="json", by_alias=True, exclude_none=True, context={"reveal_secrets": True}
                )
            )
        )
    return value


def test_every_v2_example_is_classified(reference_dir: Path) -> None:
    names = {p.name.split("-")[1] for p in (reference_dir / "cds-hooks/examples").glob("v2.0.1-*")}
    client_side_or_jwt = {"ex21", "ex22", "ex23", "ex24"}  # the JWT and its JWKS: test_auth_keys
    fragments = {"ex27", "ex28", "ex29"}  # not standalone JSON
    known_errata = {"ex07", "ex15", "ex17", "ex25"}
    assert names == set(SERVICE_SIDE) | client_side_or_jwt | fragments | known_errata


@pytest.mark.parametrize("name", sorted(SERVICE_SIDE))
def test_spec_example_round_trips(reference_dir: Path, name: str) -> None:
    parse, key = SERVICE_SIDE[name]
    data = example(reference_dir, name)
    part = data[key] if key else data
    assert dumped(parse(part)) == part


def test_spec_response_serialises_byte_for_byte_equal_json(reference_dir: Path) -> None:
    data = example(reference_dir, "ex16")
    assert json.loads(dump_json(CdsResponse.model_validate(data))) == data


def test_ex07_prefetch_value_must_be_a_resource_or_null(reference_dir: Path) -> None:
    # The spec's "Example prefetch data" gives "user": "123"; the spec text and the logical
    # model (prefetch.value: Resource, nullable) say each value is a FHIR resource or null.
    data = example(reference_dir, "ex07")["prefetch"]
    with pytest.raises(ValidationError) as refused:
        PrefetchValues.validate_python(data)
    assert {err["loc"][0] for err in refused.value.errors()} == {"user"}
    mended = {key: value for key, value in data.items() if key != "user"}
    assert PrefetchValues.validate_python(mended) == mended


@pytest.mark.parametrize(
    ("name", "where", "field", "mended"),
    [
        # Action.description is REQUIRED (spec "Action"); the systemActions example omits it.
        ("ex15", "systemActions", "description", "Update the order"),
        # Card.indicator is REQUIRED (spec "Card Attributes"); the autolaunchable example omits it.
        ("ex17", "cards", "indicator", "info"),
    ],
)
def test_response_examples_missing_a_required_field(
    reference_dir: Path, name: str, where: str, field: str, mended: str
) -> None:
    data = example(reference_dir, name)
    with pytest.raises(ValidationError, match=rf"{where}\.0\.{field}"):
        CdsResponse.model_validate(data)
    data[where][0][field] = mended
    assert dumped(CdsResponse.model_validate(data)) == data


def test_ex25_patient_view_needs_a_patient_id(reference_dir: Path) -> None:
    # The extension example's patient-view context lacks patientId, REQUIRED by patient-view.
    from cds_hooks.errors import InvalidRequest

    data = example(reference_dir, "ex25")
    with pytest.raises(InvalidRequest) as refused:
        parse_request(data)
    assert [issue.expression for issue in refused.value.issues] == ["context.patientId"]
    data["context"]["patientId"] = "123"
    parsed = parse_request(data)
    assert isinstance(parsed, PatientViewRequest)
    assert dumped(parsed) == data


def test_spec_jwk_set_and_token_header_and_claims(reference_dir: Path) -> None:
    header, claims = example(reference_dir, "ex21"), example(reference_dir, "ex22")
    assert header["alg"] == "ES384" and header["kid"] in keys_by_kid(example(reference_dir, "ex23"))
    token = jwt.encode(claims, jwt.PyJWK(example(reference_dir, "ex24")).key, "ES384", header)
    assert jwt.get_unverified_header(token) == header


AHRQ = [
    "Adolfo777_Braun514",
    "Adrian111_Wunsch504",
    "Cher186_Crooks415",
    "Debora709_Mayer370",
    "unhealthy_patient",
]


@pytest.mark.parametrize("name", AHRQ)
def test_ahrq_request_examples_are_accepted(reference_dir: Path, name: str) -> None:
    path = reference_dir / "cds-hooks" / "ahrq-request-examples" / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_request(data)
    assert isinstance(parsed, PatientViewRequest)
    assert parsed.context.patient_id == data["context"]["patientId"]
    assert parsed.prefetch is not None and set(parsed.prefetch) == set(data["prefetch"])
    assert dumped(parsed) == data


def test_ahrq_feedback_example_is_accepted(reference_dir: Path) -> None:
    data = json.loads((reference_dir / "cds-hooks/ahrq-request-examples/feedback.json").read_text())
    assert dumped(FeedbackRequest.model_validate(data)) == data
