"""The register's FHIR API over HTTP, on SQLite and on a real PostgreSQL: publish, update with
and without the current version, end, history and search; every malformed Flag refused with the
field named and nothing stored; who may write and read (SMART Backend Services tokens); no
delete; the CapabilityStatement and the profile."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.structuredefinition import StructureDefinition
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from iris_prompt.register.clients import READ, WRITE
from iris_prompt.register.repository import Accessor, VersionConflict
from iris_prompt.register.tables import RegisterFlag, RegisterFlagVersion
from iris_prompt.store.service import Store
from tests.api.register_support import (
    POLICE,
    PROBATION,
    Partner,
    RegisterService,
    mappa_flag,
    police,
    probation,
    publish,
    register_service,
)
from tests.api.store_support import open_store
from tests.conftest import new_database
from tests.support.server import serve
from tests.support.tokens import SigningKey, generate_key, jwks

pytestmark = pytest.mark.slow

STATUS_REASON = "https://iris-prompt.invalid/fhir/StructureDefinition/status-reason"


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Store:
    return open_store(store_url, tmp_path / "data")


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


def put(svc: RegisterService, partner: Partner, flag: dict[str, Any], version: str | None) -> Any:
    headers = svc.auth(partner) | ({"If-Match": f'W/"{version}"'} if version else {})
    return svc.client.request("PUT", f"/fhir/Flag/{flag['id']}", json=flag, headers=headers)


def stored_counts(store: Store) -> tuple[int, int]:
    with Session(store.engine) as session:
        flags = session.scalar(select(func.count()).select_from(RegisterFlag))
        versions = session.scalar(select(func.count()).select_from(RegisterFlagVersion))
    return int(flags or 0), int(versions or 0)


def test_publish_update_end_and_history(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        created = publish(svc, probation, mappa_flag())
        flag_id = created["id"]
        stale = put(
            svc, probation, created | {"period": {"start": "2026-10-01", "end": "2027-03-01"}}, "1"
        )
        assert stale.status_code == 200, stale.text
        again = put(svc, probation, created, "1")  # version 1 is no longer current
        missing = put(svc, probation, created, None)
        ended = put(
            svc, probation, stale.json() | {"status": "inactive"}, stale.json()["meta"]["versionId"]
        )
        read = svc.client.get(f"/fhir/Flag/{flag_id}", headers=svc.auth(probation))
        history = svc.client.get(f"/fhir/Flag/{flag_id}/_history", headers=svc.auth(probation))
        first = svc.client.get(f"/fhir/Flag/{flag_id}/_history/1", headers=svc.auth(probation))
        deleted = svc.client.request("DELETE", f"/fhir/Flag/{flag_id}", headers=svc.auth(probation))
    assert created["meta"]["versionId"] == "1"
    assert created["identifier"][-1]["value"] == flag_id
    assert stale.headers["ETag"] == 'W/"2"'
    assert again.status_code == 412
    assert again.json()["issue"][0]["expression"] == ["If-Match"]
    assert missing.status_code == 428
    assert ended.status_code == 200 and ended.json()["meta"]["versionId"] == "3"
    assert read.json()["status"] == "inactive" and read.headers["ETag"] == 'W/"3"'
    versions = [e["resource"]["meta"]["versionId"] for e in history.json()["entry"]]
    assert versions == ["3", "2", "1"]  # every version kept
    assert first.json()["period"]["end"] == "2027-04-01"
    assert deleted.status_code == 405
    assert stored_counts(store) == (1, 3)


def test_entered_in_error_needs_a_reason(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        created = publish(svc, probation, mappa_flag())
        no_reason = put(svc, probation, created | {"status": "entered-in-error"}, "1")
        reason = {"url": STATUS_REASON, "valueString": "wrong person: NHS number mistyped"}
        with_reason = created | {
            "status": "entered-in-error",
            "extension": [*created["extension"], reason],
        }
        ended = put(svc, probation, with_reason, "1")
    assert no_reason.status_code == 422
    assert no_reason.json()["issue"][0]["expression"] == ["Flag.extension('status-reason')"]
    assert ended.status_code == 200 and ended.json()["status"] == "entered-in-error"


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


def test_a_client_writes_only_its_own_organisations_flags(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation, police) as svc:
        forged = svc.client.post(
            "/fhir/Flag", json=mappa_flag(organisation=PROBATION), headers=svc.auth(police)
        )
        created = publish(svc, probation, mappa_flag())
        taken_over = put(
            svc, police, created | {"author": mappa_flag(organisation=POLICE)["author"]}, "1"
        )
        changed = put(svc, police, created, "1")
        read = svc.client.get(f"/fhir/Flag/{created['id']}", headers=svc.auth(police))
    assert forged.status_code == 403
    assert taken_over.status_code == 403 and changed.status_code == 403
    assert read.status_code == 200  # any partner with read scope may read
    assert stored_counts(store) == (1, 1)


def test_a_read_only_token_cannot_write_and_no_token_cannot_read(
    es384_key: SigningKey, store: Store
) -> None:
    reader = Partner("co-ordinator", "MAPPA9", generate_key("ES384"), scopes=(READ,))
    with register_service(es384_key, store, reader) as svc:
        read_only = svc.auth(reader, READ)
        write = svc.client.post(
            "/fhir/Flag", json=mappa_flag(organisation="MAPPA9"), headers=read_only
        )
        wider = svc.token_response(svc.form(reader, f"{READ} {WRITE}"))
        anonymous = svc.client.get("/fhir/Flag")
        forged = svc.client.get("/fhir/Flag", headers={"Authorization": "Bearer abc.def.ghi"})
        search = svc.client.get("/fhir/Flag", headers=read_only)
    assert write.status_code == 403
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    assert anonymous.status_code == 401 and forged.status_code == 401
    assert search.status_code == 200


def test_expired_replayed_and_wrongly_signed_assertions_are_refused(
    es384_key: SigningKey,
    store: Store,
) -> None:
    impostor = Partner(probation.client_id, PROBATION, generate_key("ES384"))
    with register_service(es384_key, store, probation) as svc:
        now = int(time.time())
        expired = svc.token_response(svc.form(probation, iat=now - 600, exp=now - 300))
        form = svc.form(probation)
        first = svc.token_response(form)
        replayed = svc.token_response(form)
        wrong_key = svc.token_response(svc.form(impostor))
        wrong_sub = svc.token_response(svc.form(probation, sub="someone-else"))
        wrong_aud = svc.token_response(svc.form(probation, aud="https://elsewhere.example/token"))
        too_long = svc.token_response(svc.form(probation, exp=now + 3600))
        grant = svc.token_response(form | {"grant_type": "password"})
    assert first.status_code == 200
    assert first.json()["token_type"] == "bearer" and first.json()["expires_in"] == 300
    for refused in (expired, replayed, wrong_key, wrong_sub, wrong_aud, too_long):
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"
        assert "access_token" not in refused.json()
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_search_by_nhs_number_status_dates_and_review_date(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        soon = publish(svc, probation, mappa_flag(end="2026-12-15"))
        later = publish(svc, probation, mappa_flag("9990000026", end="2027-06-01"))
        auth = svc.auth(probation)

        def ids(**params: str) -> list[str]:
            response = svc.client.get("/fhir/Flag", params=params, headers=auth)
            assert response.status_code == 200, response.text
            return sorted(e["resource"]["id"] for e in response.json()["entry"])

        by_number = ids(**{"subject:identifier": "https://fhir.nhs.uk/Id/nhs-number|9990000026"})
        due = ids(
            **{
                "status": "active",
                "review-date": "le2026-12-26",
                "author:identifier": f"https://fhir.nhs.uk/Id/ods-organization-code|{PROBATION}",
            }
        )
        active_in_may = ids(date="2027-05-01")
        updated = ids(_lastUpdated="ge2026-11-26")
        inactive = ids(status="inactive")
        bad = svc.client.get("/fhir/Flag", params={"colour": "red"}, headers=auth)
        bad_date = svc.client.get("/fhir/Flag", params={"date": "tuesday"}, headers=auth)
    assert by_number == [later["id"]]
    assert due == [soon["id"]]  # the owner's review summary: due within 30 days
    assert active_in_may == [later["id"]]
    assert updated == sorted([soon["id"], later["id"]])
    assert inactive == []
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["colour"]
    assert bad_date.status_code == 400 and bad_date.json()["issue"][0]["expression"] == ["date"]


def test_two_writers_racing_on_one_flag_one_wins_nothing_lost(
    store: Store,
    es384_key: SigningKey,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        created = publish(svc, probation, mappa_flag())
        register = svc.register.flags
        who = Accessor(probation.client_id, PROBATION)
        start = threading.Barrier(2)
        results: dict[str, str] = {}

        def write(name: str, end: str) -> None:
            start.wait()
            change = created | {"period": {"start": "2026-10-01", "end": end}}
            try:
                register.update(created["id"], change, 1, who, svc.clock())
                results[name] = "won"
            except VersionConflict:
                results[name] = "412"

        threads = [
            threading.Thread(target=write, args=("a", "2027-01-01")),
            threading.Thread(target=write, args=("b", "2027-02-01")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        history = svc.client.get(
            f"/fhir/Flag/{created['id']}/_history", headers=svc.auth(probation)
        )
    assert sorted(results.values()) == ["412", "won"]
    versions = history.json()["entry"]
    assert [e["resource"]["meta"]["versionId"] for e in versions] == ["2", "1"]
    winner = "2027-01-01" if results["a"] == "won" else "2027-02-01"
    assert versions[0]["resource"]["period"]["end"] == winner


def test_metadata_and_the_published_profile(
    es384_key: SigningKey,
    store: Store,
) -> None:
    with register_service(es384_key, store, probation) as svc:
        metadata = svc.client.get("/fhir/metadata")
        profile = svc.client.get("/fhir/StructureDefinition/mappa-register-flag")
        smart = svc.client.get("/fhir/.well-known/smart-configuration")
    statement = CapabilityStatement.model_validate(metadata.json())
    [flag] = [r for r in statement.rest[0].resource if r.type == "Flag"]
    codes = {i.code for i in flag.interaction}
    assert codes == {"read", "vread", "update", "history-instance", "create", "search-type"}
    assert "delete" not in codes and flag.versioning == "versioned-update"
    assert {p.name for p in flag.searchParam} >= {
        "subject:identifier",
        "status",
        "date",
        "_lastUpdated",
    }
    definition = StructureDefinition.model_validate(profile.json())
    assert definition.url in flag.supportedProfile
    assert smart.json()["token_endpoint"].endswith("/oauth/token")


def test_a_client_whose_keys_are_at_an_allow_listed_jwks_url_gets_a_token(
    es384_key: SigningKey, store: Store
) -> None:
    key = generate_key("ES384")
    keys = FastAPI()
    keys.get("/jwks.json")(lambda: jwks(key))
    with serve(keys, access_log=False) as url:
        partner = Partner("probation-keys-online", "PROB3", key, jku=(f"{url}/jwks.json",))
        with register_service(es384_key, store, partner) as svc:
            answer = svc.token_response(svc.form(partner))
            published = publish(svc, partner, mappa_flag(organisation="PROB3"))
    assert answer.status_code == 200, answer.text
    assert published["author"]["identifier"]["value"] == "PROB3"
