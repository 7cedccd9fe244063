"""The template's SMART routes in process, against a fake EHR (`smart_support`): what a
clinician, an EHR integrator or an assurer would hit when a launch, a sign-in or a filing goes
wrong. The happy path through the real launcher is `tests/browser/test_smart_launch.py`."""

import asyncio
from collections.abc import Iterator

import httpx
import orjson
import pytest

from iris_prompt.template.sessions import COOKIE
from tests.api.smart_support import (
    DISCLOSURE,
    ISS,
    OTHER_ISS,
    FakeEhr,
    cookie_set_by,
    csrf_of,
    sign_in,
    smart_app,
    start_launch,
    transaction_response,
)
from tests.support.inprocess import SyncClient


@pytest.fixture
def ehr() -> FakeEhr:
    return FakeEhr()


@pytest.fixture
def client(ehr: FakeEhr) -> Iterator[SyncClient]:
    with smart_app(ehr) as client:
        yield client


def submit(client: SyncClient, csrf: str) -> str:
    """The answers of a disclosure sent from the form; the review page's CSRF token."""
    answer = client.post("/template/record", data={**DISCLOSURE, "csrf": csrf})
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)


def test_a_launch_signs_in_shows_the_patient_and_files_once(
    client: SyncClient, ehr: FakeEhr
) -> None:
    assert sign_in(client, ehr).status_code == 303
    form = client.get("/template/record")
    assert "Alpha" in form.text
    review = submit(client, csrf_of(form.text))
    filed = client.post("/template/file", data={"csrf": review})
    assert filed.status_code == 200 and "Filed in the patient" in filed.text
    (bundle,) = ehr.transactions
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {"Patient/p1"}


def expire_the_token(ehr: FakeEhr) -> None:
    ehr.transaction = lambda _request: httpx.Response(401)


def entries_waiting_after_an_expired_token(client: SyncClient, ehr: FakeEhr) -> None:
    sign_in(client, ehr)
    review = submit(client, csrf_of(client.get("/template/record").text))
    expire_the_token(ehr)
    assert client.post("/template/file", data={"csrf": review}).status_code == 401
    ehr.transaction = None


def test_a_form_shown_for_one_patient_cannot_record_for_the_next_patient_launched(
    client: SyncClient, ehr: FakeEhr
) -> None:
    sign_in(client, ehr)
    shown_for_p1 = csrf_of(client.get("/template/record").text)
    ehr.patient = "p2"  # the same browser opens the template from the next patient's record
    sign_in(client, ehr)
    answer = client.post("/template/record", data={**DISCLOSURE, "csrf": shown_for_p1})
    assert answer.status_code == 403
    assert client.get("/template/review").status_code == 404  # nothing waits for Patient/p2


def test_signing_in_gives_the_session_a_new_id(client: SyncClient, ehr: FakeEhr) -> None:
    started = start_launch(client, ehr)
    assert started.cookie is not None
    signed_in = client.get(
        "/template/callback", params={"code": started.code, "state": started.state}
    )
    assert signed_in.status_code == 303
    assert cookie_set_by(signed_in) not in (None, started.cookie)
    # Whoever knew the id before the sign-in (a fixed cookie) has nothing.
    fixed = client.get("/template/record", headers={"Cookie": f"{COOKIE}={started.cookie}"})
    assert fixed.status_code == 401 and "Alpha" not in fixed.text
    assert "Alpha" in client.get("/template/record").text


@pytest.mark.parametrize(
    ("user", "id_token"),
    [
        ("Patient/p1", True),  # a patient-facing launch
        ("RelatedPerson/r1", True),
        (f"{ISS}/Person/x", True),  # may not author a QuestionnaireResponse in R4
        (None, True),  # an ID token without fhirUser
        ("Practitioner/gp1", False),  # no ID token: nobody verified
    ],
)
def test_only_a_verified_practitioner_is_signed_in(
    client: SyncClient, ehr: FakeEhr, user: str | None, id_token: bool
) -> None:
    ehr.fhir_user, ehr.id_token = user, id_token
    answer = sign_in(client, ehr)
    assert answer.status_code == 403
    assert "Alpha" not in answer.text
    assert client.get("/template/record").status_code == 401


@pytest.mark.parametrize("user", ["PractitionerRole/r1", f"{ISS}/Practitioner/gp1"])
def test_a_practitioner_or_their_role_is_the_author(
    client: SyncClient, ehr: FakeEhr, user: str
) -> None:
    ehr.fhir_user = user
    assert sign_in(client, ehr).status_code == 303
    submit(client, csrf_of(client.get("/template/record").text))
    review = csrf_of(client.get("/template/review").text)
    assert client.post("/template/file", data={"csrf": review}).status_code == 200
    (bundle,) = ehr.transactions
    response = bundle["entry"][0]["resource"]
    assert response["author"] == {"reference": user}


def test_a_filing_whose_answer_never_came_does_not_say_nothing_was_filed(
    client: SyncClient, ehr: FakeEhr
) -> None:
    sign_in(client, ehr)
    review = submit(client, csrf_of(client.get("/template/record").text))

    def no_answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    ehr.transaction = no_answer
    answer = client.post("/template/file", data={"csrf": review})
    assert answer.status_code == 504
    assert "Nothing was filed" not in answer.text
    assert 'id="filing-unknown"' in answer.text and "may have been" in answer.text
    ehr.transaction = None  # filing again creates nothing the first attempt created
    assert client.post("/template/file", data={"csrf": csrf_of(answer.text)}).status_code == 200
    first, second = ehr.transactions
    assert [e["request"] for e in first["entry"]] == [e["request"] for e in second["entry"]]


@pytest.mark.parametrize(
    ("status", "body", "unknown"),
    [
        (504, b"<html>Gateway Timeout</html>", True),  # a gateway's, not the FHIR server's
        (200, b'{"resourceType": "OperationOutcome"}', True),  # a success, yet no response Bundle
        (500, b'{"resourceType": "OperationOutcome", "issue": [{"code": "exception"}]}', False),
        (422, b'{"resourceType": "OperationOutcome", "issue": [{"code": "invariant"}]}', False),
    ],
)
def test_only_an_answer_that_says_so_is_reported_as_nothing_filed(
    client: SyncClient, ehr: FakeEhr, status: int, body: bytes, unknown: bool
) -> None:
    sign_in(client, ehr)
    review = submit(client, csrf_of(client.get("/template/record").text))
    ehr.transaction = lambda _request: httpx.Response(status, content=body)
    answer = client.post("/template/file", data={"csrf": review})
    assert answer.status_code == (504 if unknown else 502)
    assert ('id="filing-unknown"' in answer.text) is unknown
    assert ("Nothing was filed" in answer.text) is not unknown


def test_a_connection_never_made_says_nothing_was_filed(client: SyncClient, ehr: FakeEhr) -> None:
    sign_in(client, ehr)
    review = submit(client, csrf_of(client.get("/template/record").text))

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    ehr.transaction = refused
    answer = client.post("/template/file", data={"csrf": review})
    assert answer.status_code == 502 and "Nothing was filed" in answer.text


def test_a_state_or_csrf_token_beyond_ascii_is_refused_not_a_fault(
    client: SyncClient, ehr: FakeEhr
) -> None:
    start_launch(client, ehr)
    callback = client.get("/template/callback", params={"code": "c", "state": "\u00e9"})
    assert callback.status_code == 400
    sign_in(client, ehr)
    assert client.post("/template/file", data={"csrf": "\u00e9"}).status_code == 403
    assert client.post("/template/record", data={"csrf": "\u00e9"}).status_code == 403


def test_a_relaunch_the_ehr_refuses_says_the_answers_are_still_kept(
    client: SyncClient, ehr: FakeEhr
) -> None:
    entries_waiting_after_an_expired_token(client, ehr)
    started = start_launch(client, ehr)
    answer = client.get(
        "/template/callback", params={"state": started.state, "error": "access_denied"}
    )
    assert answer.status_code == 400
    assert 'id="answers-kept"' in answer.text


def test_entries_kept_for_one_record_system_are_not_offered_by_another(
    client: SyncClient, ehr: FakeEhr
) -> None:
    entries_waiting_after_an_expired_token(client, ehr)
    # Another EHR the service trusts, and a patient there with the same id.
    answer = sign_in(client, ehr, OTHER_ISS)
    assert answer.headers["location"] == "record"
    assert client.get("/template/review").status_code == 404


def test_a_double_click_on_file_files_once_and_both_answers_say_filed(
    client: SyncClient, ehr: FakeEhr
) -> None:
    sign_in(client, ehr)
    review = submit(client, csrf_of(client.get("/template/record").text))

    async def slowly(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.3)  # as an EHR takes its time: the second click comes meanwhile
        return transaction_response(orjson.loads(request.content))

    ehr.transaction = slowly
    # The browser shows the answer to the last click: it must not read as a failure.
    first, second = client.concurrently(
        ("POST", "/template/file", {"data": {"csrf": review}}),
        ("POST", "/template/file", {"data": {"csrf": review}}),
    )
    assert len(ehr.transactions) == 1
    for answer in (first, second):
        assert answer.status_code == 200, answer.text
        assert "Filed in the patient" in answer.text
