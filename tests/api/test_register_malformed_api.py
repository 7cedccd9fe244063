"""The register's FHIR API over HTTP refuses every malformed Flag (422, the field named in
the OperationOutcome) and a body that is not a Flag (400), and stores nothing.

The register runs in the real app, called in process, on SQLite and on a real PostgreSQL:
one service per database (`refusing`) for all the cases, as they store nothing.
"""

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from iris_prompt.register.api import MAX_FLAG_BYTES
from tests.api.register_support import (
    RegisterService,
    mappa_flag,
    probation,
    register_service,
    stored_counts,
)
from tests.api.store_support import open_store
from tests.conftest import new_database
from tests.support.tokens import SigningKey

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def refusing(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    es384_key: SigningKey,
) -> Iterator[RegisterService]:
    """One register service per database for the cases it refuses: they store nothing, so they
    share it, and each checks that its store is still empty."""
    folder = tmp_path_factory.mktemp("refusing")
    store = open_store(new_database(request, request.param, folder), folder / "data")
    with register_service(es384_key, store, probation) as svc:
        yield svc


BAD_FLAGS = [
    # (what is wrong, the flag, the field the OperationOutcome names)
    (
        "not MAPPA",
        {"code": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}},
        "Flag.code",
    ),
    (
        "NHS number check digit",
        {
            "subject": {
                "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000019"}
            }
        },
        "Flag.subject.identifier.value",
    ),
    (
        "NHS number not ten digits",
        {
            "subject": {
                "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "999000001"}
            }
        },
        "Flag.subject.identifier.value",
    ),
    (
        "subject without NHS number",
        {"subject": {"reference": "Patient/x"}},
        "Flag.subject.identifier",
    ),
    (
        "subject not a Patient",
        {
            "subject": {
                "reference": "Group/x",
                "identifier": {
                    "system": "https://fhir.nhs.uk/Id/nhs-number",
                    "value": "9990000018",
                },
            }
        },
        "Flag.subject.reference",
    ),
    ("no period.start", {"period": {"end": "2027-01-01"}}, "Flag.period.start"),
    ("no review date", {"period": {"start": "2026-10-01"}}, "Flag.period.end"),
    (
        "review over 12 months ahead",
        {"period": {"start": "2026-10-01", "end": "2027-12-01"}},
        "Flag.period.end",
    ),
    (
        "end before start",
        {"period": {"start": "2026-10-01", "end": "2026-09-01"}},
        "Flag.period.end",
    ),
    ("no risk levels", {"extension": []}, "Flag.extension"),
    (
        "unknown level",
        {
            "extension": [
                {
                    "url": "https://iris-prompt.invalid/fhir/StructureDefinition/risk-of-serious-harm",
                    "extension": [
                        {
                            "url": "group",
                            "valueCoding": {
                                "system": "https://iris-prompt.invalid/fhir/CodeSystem/risk-of-serious-harm-group",
                                "code": "children",
                            },
                        },
                        {
                            "url": "level",
                            "valueCoding": {
                                "system": "https://iris-prompt.invalid/fhir/CodeSystem/risk-of-serious-harm-level",
                                "code": "severe",
                            },
                        },
                    ],
                }
            ]
        },
        "Flag.extension[0].extension('level')",
    ),
    ("no author", {"author": None}, "Flag.author.identifier"),
    (
        "author not an ODS code",
        {
            "author": {
                "identifier": {
                    "system": "https://fhir.nhs.uk/Id/ods-organization-code",
                    "value": "prob 1",
                }
            }
        },
        "Flag.author.identifier.value",
    ),
    ("unknown status", {"status": "suspended"}, "Flag.status"),
    ("period not a date", {"period": {"start": "soon", "end": "2027-01-01"}}, "Flag.period.start"),
    # Modifiers the register does not understand could reverse the flag's meaning.
    (
        "a modifier extension",
        {
            "modifierExtension": [
                {"url": "https://partner.example/not-current", "valueBoolean": True}
            ]
        },
        "Flag.modifierExtension",
    ),
    (
        "a modifier extension inside the flag",
        {
            "contained": [
                {
                    "resourceType": "Organization",
                    "id": "owner",
                    "modifierExtension": [{"url": "https://partner.example/x", "valueCode": "no"}],
                }
            ]
        },
        "Flag.contained[0].modifierExtension",
    ),
    ("implicit rules", {"implicitRules": "https://partner.example/rules"}, "Flag.implicitRules"),
]


@pytest.mark.parametrize(("why", "change", "field"), BAD_FLAGS, ids=[b[0] for b in BAD_FLAGS])
def test_a_malformed_flag_is_refused_naming_the_field_and_nothing_is_stored(
    refusing: RegisterService,
    why: str,
    change: dict[str, Any],
    field: str,
) -> None:
    flag = {k: v for k, v in (mappa_flag() | change).items() if v is not None}
    response = refusing.client.post("/fhir/Flag", json=flag, headers=refusing.auth(probation))
    assert response.status_code == 422, why
    assert response.json()["resourceType"] == "OperationOutcome"
    named = [e for issue in response.json()["issue"] for e in issue["expression"]]
    assert field in named, (why, named)
    assert stored_counts(refusing.register.store) == (0, 0)


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"resourceType": "Patient"}', b"[1, 2]"],
    ids=["text", "patient", "list"],
)
def test_a_body_that_is_not_a_flag_gets_400(refusing: RegisterService, body: bytes) -> None:
    headers = refusing.auth(probation) | {"Content-Type": "application/fhir+json"}
    response = refusing.client.post("/fhir/Flag", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Flag"]
    assert stored_counts(refusing.register.store) == (0, 0)


def test_a_flag_nested_too_deeply_gets_400_and_nothing_is_stored(
    refusing: RegisterService, caplog: pytest.LogCaptureFixture
) -> None:
    """A modifierExtension nested 150 deep (6 KB) used to make validation recurse out of the
    stack: a 500 logging hundreds of stack frames. It is refused before anything walks it."""
    extension: dict[str, Any] = {"url": "https://example.org/x", "valueString": "x"}
    for _ in range(150):
        extension = {"url": "https://example.org/x", "extension": [extension]}
    flag = mappa_flag(modifierExtension=[extension])
    headers = refusing.auth(probation) | {"Content-Type": "application/fhir+json"}
    with caplog.at_level(logging.INFO):
        response = refusing.client.post("/fhir/Flag", content=json.dumps(flag), headers=headers)
    assert response.status_code == 400
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["Flag"] and "nested too deeply" in issue["diagnostics"]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
    assert stored_counts(refusing.register.store) == (0, 0)


def test_an_oversized_flag_is_refused_as_it_streams_in(refusing: RegisterService) -> None:
    """No Content-Length, 10 MiB sent in 16 KiB chunks: the register stops reading just past
    its 64 KiB limit and answers 413, rather than reading it all first."""
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(640):
            sent += 1
            yield b" " * (16 * 1024)

    headers = refusing.auth(probation) | {"Content-Type": "application/fhir+json"}
    response = refusing.client.post("/fhir/Flag", content=chunks(), headers=headers)
    assert response.status_code == 413
    (issue,) = response.json()["issue"]
    assert issue["code"] == "too-costly" and issue["expression"] == ["Flag"]
    assert sent <= MAX_FLAG_BYTES // (16 * 1024) + 2, sent
    assert stored_counts(refusing.register.store) == (0, 0)
