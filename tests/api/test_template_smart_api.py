"""The template's SMART routes in process, against a fake EHR (`smart_support`): what a
clinician, an EHR integrator or an assurer would hit when a launch, a sign-in or a filing goes
wrong. The happy path through the real launcher is `tests/browser/test_smart_launch.py`."""

import asyncio
from collections.abc import Callable, Iterator

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


def raising(
    error: type[httpx.RequestError],
) -> Callable[[httpx.Request], httpx.Response]:
    """An EHR transaction endpoint whose request fails with `error`."""

    def answer(request: httpx.Request) -> httpx.Response:
        raise error("the EHR's answer", request=request)

    return answer


def filed_with(
    client: SyncClient, ehr: FakeEhr, transaction: Callable[[httpx.Request], httpx.Response]
) -> httpx.Response:
    """Signed in, a disclosure submitted, then filed while the EHR answers with `transaction`."""
    sign_in(client, ehr)
    review = submit(client, csrf_of(client.get("/template/record").text))
    ehr.transaction = transaction
    return client.post("/template/file", data={"csrf": review})


def test_a_filing_whose_answer_never_came_does_not_say_nothing_was_filed(
    client: SyncClient, ehr: FakeEhr
) -> None:
    answer = filed_with(client, ehr, raising(httpx.ReadTimeout))
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
        # A server error, even one written as an OperationOutcome (gateways write them too).
        (500, b'{"resourceType": "OperationOutcome", "issue": [{"code": "exception"}]}', True),
        (504, b'{"resourceType": "OperationOutcome", "issue": [{"code": "timeout"}]}', True),
        # A success status with an informational OperationOutcome (an asynchronous facade's).
        (202, b'{"resourceType": "OperationOutcome", "issue": [{"code": "informational"}]}', True),
        # The request refused: a transaction is all or nothing, so nothing was filed.
        (422, b'{"resourceType": "OperationOutcome", "issue": [{"code": "invariant"}]}', False),
        (400, b"<html>Bad Request</html>", False),
    ],
)
def test_only_an_answer_that_says_so_is_reported_as_nothing_filed(
    client: SyncClient, ehr: FakeEhr, status: int, body: bytes, unknown: bool
) -> None:
    answer = filed_with(client, ehr, lambda _request: httpx.Response(status, content=body))
    assert answer.status_code == (504 if unknown else 502)
    assert ('id="filing-unknown"' in answer.text) is unknown
    assert ("Nothing was filed" in answer.text) is not unknown


def test_a_connection_never_made_says_nothing_was_filed(client: SyncClient, ehr: FakeEhr) -> None:
    answer = filed_with(client, ehr, raising(httpx.ConnectError))
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


def filing_while_signing_in_elsewhere(
    client: SyncClient, ehr: FakeEhr
) -> tuple[httpx.Response, httpx.Response]:
    """Answers for p1 (Alpha) filed from one window while the template is launched from p2's
    (Beta) record in another, the EHR answering the filing only once it has read p2's Patient:
    (the filing's answer, the sign-in's)."""
    sign_in(client, ehr)
    review = submit(client, csrf_of(client.get("/template/record").text))
    ehr.patient = "p2"
    started = start_launch(client, ehr)
    ehr.hold_filing()
    filed, signed_in = client.concurrently(
        ("POST", "/template/file", {"data": {"csrf": review}}),
        ("GET", "/template/callback", {"params": {"code": started.code, "state": started.state}}),
    )
    assert signed_in.status_code == 303, signed_in.text
    return filed, signed_in


def test_a_filing_under_way_when_another_patient_signs_in_ends_as_its_own(
    client: SyncClient, ehr: FakeEhr
) -> None:
    """The filing finishes under its own sign-in and says whose record it went to; the sign-in
    then starts afresh, so p2's answers are sent for p2, never shown p1's filing instead."""
    filed, signed_in = filing_while_signing_in_elsewhere(client, ehr)
    assert filed.status_code == 200 and "Alpha" in filed.text and "Beta" not in filed.text
    (first,) = ehr.transactions
    assert {e["resource"]["subject"]["reference"] for e in first["entry"]} == {"Patient/p1"}
    ehr.patient_read = None
    cookie = {"Cookie": f"{COOKIE}={cookie_set_by(signed_in)}"}
    form = client.get("/template/record", headers=cookie)
    assert form.status_code == 200 and "Beta" in form.text
    review = client.post(
        "/template/record", data={**DISCLOSURE, "csrf": csrf_of(form.text)}, headers=cookie
    )
    again = client.post("/template/file", data={"csrf": csrf_of(review.text)}, headers=cookie)
    assert again.status_code == 200 and "Beta" in again.text
    assert len(ehr.transactions) == 2
    second = ehr.transactions[1]
    assert {e["resource"]["subject"]["reference"] for e in second["entry"]} == {"Patient/p2"}


def test_a_filing_of_unknown_outcome_while_another_patient_signs_in_keeps_its_answers(
    client: SyncClient, ehr: FakeEhr
) -> None:
    """The EHR never answers the filing: its page says nobody can tell, with p1's answers and
    banner, rather than failing because the other sign-in dropped them mid-filing."""

    ehr.transaction = raising(httpx.ReadTimeout)
    filed, _ = filing_while_signing_in_elsewhere(client, ehr)
    assert filed.status_code == 504 and 'id="filing-unknown"' in filed.text
    assert "Alpha" in filed.text and "Beta" not in filed.text


def test_a_form_left_open_records_after_the_same_user_signs_in_again_for_its_patient(
    client: SyncClient, ehr: FakeEhr
) -> None:
    """A second window for the same patient (or the EHR opening the template again) does not
    cost the answers typed in the first: its form still records, for that patient."""
    sign_in(client, ehr)
    shown = csrf_of(client.get("/template/record").text)
    sign_in(client, ehr)
    answer = client.post("/template/record", data={**DISCLOSURE, "csrf": shown})
    assert answer.status_code == 200, answer.text
    assert "Alpha" in answer.text


def test_entries_kept_for_one_user_are_not_offered_to_another_at_the_same_computer(
    client: SyncClient, ehr: FakeEhr
) -> None:
    """Entries waiting after an expired token are offered again only to the user who made them:
    another user would file them with the first named as their author."""
    entries_waiting_after_an_expired_token(client, ehr)
    ehr.fhir_user = "Practitioner/gp2"
    assert sign_in(client, ehr).headers["location"] == "record"


def test_a_sign_in_the_ehr_refuses_shows_no_patient_signed_in_before(
    client: SyncClient, ehr: FakeEhr
) -> None:
    """After a sign-in for p1, a launch from p2's record that the EHR refuses: the page names
    no patient (p1's banner would say 'check this is the patient in front of you')."""
    sign_in(client, ehr)
    ehr.patient = "p2"
    started = start_launch(client, ehr)
    refused = client.get(
        "/template/callback", params={"state": started.state, "error": "access_denied"}
    )
    ehr.fhir_user = "Patient/p2"
    not_staff = sign_in(client, ehr)
    for answer in (refused, not_staff):
        assert answer.status_code in (400, 403)
        assert "Alpha" not in answer.text and "Beta" not in answer.text
